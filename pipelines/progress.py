"""What `eventpulse run` prints: one compact line per Dagster log message of INFO and above, and
one line per finished step with how many of the run's steps are done (`[5/20] sessions done`).

Its own module so that `definitions` (which registers the logger) and `runner` (which runs the
job) both import it without importing each other.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

import dagster as dg
import numpy as np

STEP_DONE = "STEP_SUCCESS"  # a DEBUG event in Dagster: shown here as progress


class _ProgressFormatter(logging.Formatter):
    """`12:00:01 events: 2026-03-01: 1234 records ...`: the step and its message, no run id."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.done = 0

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = meta.get("orig_message") or record.getMessage()
        step = meta.get("step_key")
        clock = self.formatTime(record, "%H:%M:%S")
        if _is_step_done(record):
            self.done += 1
            of = f"/{self.steps}" if self.steps else ""
            return f"{clock} [{self.done}{of}] {step} done"
        return f"{clock} {step}: {message}" if step else f"{clock} {message}"


def _is_step_done(record: logging.LogRecord) -> bool:
    event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
    return event is not None and event.event_type_value == STEP_DONE


class _ProgressFilter(logging.Filter):
    """INFO and above, and the (DEBUG) step-success events."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or _is_step_done(record)


@dg.logger(
    config_schema={"steps": dg.Field(int, default_value=0, description="Steps in the run.")},
    description="Compact progress lines for `eventpulse run` (INFO and above, steps done).",
)
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("eventpulse", level=logging.DEBUG)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_ProgressFormatter(init_context.logger_config["steps"]))
    handler.addFilter(_ProgressFilter())
    logger.addHandler(handler)
    return logger


def counted(report: Callable[[str], object], what: str, total: int) -> Callable[[str], None]:
    """A callback for each finished item of `total`: `report("daily report 3 of 360: <item>")`,
    counting in the order the items finish (from one process or several)."""
    done = 0

    def one_done(item: str) -> None:
        nonlocal done
        done += 1
        report(f"{what} {done} of {total}: {item}")

    return one_done


PROGRESS_BATCH = 512  # texts per progress line: a few seconds of embedding on two cores


def embed_with_progress(
    embed: Callable[[Sequence[str]], np.ndarray], report: Callable[[str], object]
) -> Callable[[Sequence[str]], np.ndarray]:
    """`embed`, run in slices with a line after each (`embedded 1,024 of 3,000 chunks`), so a
    first corpus build of a few minutes is never silent. Same vectors as one call."""

    def embed_reporting(texts: Sequence[str]) -> np.ndarray:
        if len(texts) <= PROGRESS_BATCH:
            return embed(texts)
        parts = []
        for start in range(0, len(texts), PROGRESS_BATCH):
            parts.append(embed(texts[start : start + PROGRESS_BATCH]))
            done = min(start + PROGRESS_BATCH, len(texts))
            report(f"embedded {done:,} of {len(texts):,} chunks")
        return np.concatenate(parts)

    return embed_reporting
