"""What `eventpulse run` prints: one compact line per Dagster log message of INFO and above.

Its own module so that `definitions` (which registers the logger) and `runner` (which runs the
job) both import it without importing each other.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg


class _ProgressFormatter(logging.Formatter):
    """`12:00:01 events: 2026-03-01: 1234 records ...`: the step and its message, no run id."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = meta.get("orig_message") or record.getMessage()
        step = meta.get("step_key")
        clock = self.formatTime(record, "%H:%M:%S")
        return f"{clock} {step}: {message}" if step else f"{clock} {message}"


@dg.logger(description="Compact progress lines for `eventpulse run` (INFO and above).")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("eventpulse", level=logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_ProgressFormatter())
    logger.addHandler(handler)
    return logger
