"""Stage: sessions_users (filled in by its issue)."""
