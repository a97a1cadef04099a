"""Stage: corpus (filled in by its issue)."""
