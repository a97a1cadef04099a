"""The demo period's calendar (day indexes ↔ dates and microsecond timestamps) and the plan of
which anomaly happens on which day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from pipelines.demo.shop import ANOMALY_KINDS, ANOMALY_WINDOW_DAYS, DAY_US, EPOCH, MIN_HISTORY_DAYS


@dataclass(frozen=True)
class Calendar:
    first: dt.date
    days: int

    def date(self, day: int) -> dt.date:
        return self.first + dt.timedelta(days=int(day))

    def start_us(self, day: np.ndarray | int) -> np.ndarray | int:
        """Microseconds since the epoch at 00:00 UTC of a day index."""
        return ((self.first - EPOCH).days + np.asarray(day, dtype=np.int64)) * DAY_US

    def weekend(self) -> np.ndarray:
        weekday = (self.first.weekday() + np.arange(self.days)) % 7
        return weekday >= 5


@dataclass(frozen=True)
class Anomaly:
    kind: str  # one of ANOMALY_KINDS
    days: tuple[int, ...]  # day indexes it covers


def plan_anomalies(rng: np.random.Generator, days: int) -> list[Anomaly]:
    """Spread one anomaly of each kind over the last ANOMALY_WINDOW_DAYS, leaving the first
    MIN_HISTORY_DAYS as history, at least two days apart (the paused channel lasts two days)."""
    low = max(min(MIN_HISTORY_DAYS, days // 2), days - ANOMALY_WINDOW_DAYS)
    high = days - 3
    count = len(ANOMALY_KINDS)
    step = (high - 1 - low) / (count - 1)
    if step < 2:
        return []
    jitter_max = int(step) - 2
    kinds = [ANOMALY_KINDS[i] for i in rng.permutation(count)]
    plan = []
    for i, kind in enumerate(kinds):
        jitter = int(rng.integers(0, jitter_max + 1)) if i < count - 1 else 0
        day = low + int(i * step) + jitter
        plan.append(Anomaly(kind, (day, day + 1) if kind == "paused_channel" else (day,)))
    return plan
