"""Stage: retention (filled in by its issue)."""
