"""Demo event logs: a seeded, vectorised simulation of a small online shop (issue 2, item 4).

`generate()` writes what a real landing zone looks like (CONTRACT §2): a few SDK exports per
arrival day in every supported format and alias style, late arrivals, re-sent duplicates and a
sprinkling of every kind of bad record. It also injects a handful of anomalies, writes the labels
a good detector should find (`demo_labels.json`) and a product changelog that explains them
(`docs/changelog.md`, read later by the RAG corpus).

All work is numpy/polars column work: loops run per anomaly, per file style or per file, never
per event. The same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.demo.changelog import write_changelog
from pipelines.demo.delivery import deliver
from pipelines.demo.files import write_labels, write_landing
from pipelines.demo.labels import daily_metrics, honest_labels
from pipelines.demo.ownership import record_demo_files, refuse_users_files
from pipelines.demo.plan import Calendar, plan_anomalies
from pipelines.demo.simulate import (
    inject_event_anomalies,
    inject_session_anomalies,
    simulate_events,
    simulate_sessions,
    simulate_users,
)
from pipelines.errors import EventpulseError

# The steps of `generate` are public too: benchmarks/anomaly_bench.py runs them without writing
# files (the columns of `daily_metrics`' grids are settings.METRIC_NAMES).
__all__ = [
    "Calendar",
    "GenerateSummary",
    "daily_metrics",
    "generate",
    "honest_labels",
    "inject_event_anomalies",
    "inject_session_anomalies",
    "plan_anomalies",
    "simulate_events",
    "simulate_sessions",
    "simulate_users",
]


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote. Ingest should end with `events` rows in `events` and
    `sum(bad_records.values()) + duplicates` rows in `quarantine`."""

    out: Path
    first_date: dt.date
    last_date: dt.date
    users: int  # simulated users, traffic-burst visitors included
    events: int  # distinct valid events
    records: int  # lines/rows written: events, re-sent copies and bad records
    files: int
    bad_records: dict[str, int]  # by CONTRACT §2 quarantine reason
    duplicates: int  # re-sent copies of an event id (quarantine reason duplicate_event_id)
    late_records: int  # events in the folder of a day after the one they happened on
    anomalies: int
    labels: int
    elapsed_seconds: float
    events_per_second: float  # distinct valid events / elapsed seconds, files included

    def __str__(self) -> str:
        bad = sum(self.bad_records.values())
        return (
            f"{self.events:,} events from {self.users:,} users, {self.first_date} to "
            f"{self.last_date}: {self.records:,} records in {self.files:,} files "
            f"({self.late_records:,} late, {self.duplicates:,} re-sent copies, {bad:,} bad), "
            f"{self.anomalies} anomalies with {self.labels} labels; "
            f"{self.elapsed_seconds:.1f} s, {self.events_per_second:,.0f} events/s"
        )


def generate(
    out: Path,
    days: int = 90,
    users: int = 5000,
    seed: int = 7,
    end: dt.date | None = None,
) -> GenerateSummary:
    """Write `days` days of demo event files ending on `end` (default: yesterday UTC) under
    `out/landing/events/date=YYYY-MM-DD/`, plus `out/demo_labels.json` and
    `out/docs/changelog.md`. Replaces the files a previous demo wrote; refuses, writing nothing,
    when `out` holds a user's file it would overwrite or mix with (`ownership.py`)."""
    started = time.perf_counter()
    if days < 1 or users < 1:
        raise EventpulseError(
            f"Demo data needs at least 1 day and 1 user (got days={days}, users={users}); "
            "pass positive numbers."
        )
    refuse_users_files(Path(out))
    last = end or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    calendar = Calendar(first=last - dt.timedelta(days=days - 1), days=days)
    rng = np.random.default_rng(seed)

    anomalies = plan_anomalies(rng, days)
    population = simulate_users(rng, calendar, users)
    sessions = simulate_sessions(rng, calendar, population)
    sessions, population, incidents = inject_session_anomalies(
        rng, calendar, anomalies, sessions, population
    )
    events = simulate_events(rng, calendar, sessions, population)
    events, incidents = inject_event_anomalies(rng, anomalies, events, incidents)
    labels = honest_labels(calendar, daily_metrics(events, sessions, days), anomalies)

    records, delivery = deliver(rng, calendar, events)
    files = write_landing(Path(out), calendar, records)
    write_labels(Path(out) / "demo_labels.json", labels)
    write_changelog(Path(out) / "docs" / "changelog.md", rng, calendar, incidents)
    record_demo_files(Path(out))

    elapsed = time.perf_counter() - started
    return GenerateSummary(
        out=Path(out),
        first_date=calendar.first,
        last_date=last,
        users=len(population.first_day),
        events=events.height,
        records=records.height,
        files=files,
        bad_records=delivery.bad_records,
        duplicates=delivery.duplicates,
        late_records=delivery.late_records,
        anomalies=len(anomalies),
        labels=len(labels),
        elapsed_seconds=round(elapsed, 3),
        events_per_second=round(events.height / elapsed, 1),
    )
