"""Stage: funnels (filled in by its issue)."""
