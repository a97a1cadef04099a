"""Stage: cohorts (filled in by its issue)."""
