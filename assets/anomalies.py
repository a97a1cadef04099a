"""Stage: anomalies (filled in by its issue)."""
