"""Partitions: ingest by arrival day (CONTRACT §2), weekly reports by Monday weeks, both cut in
the project's `timezone` (a day's partition ends at the zone's midnight)."""

from __future__ import annotations

import datetime as dt
import functools

import dagster as dg

from pipelines.settings import Settings, project_settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.partition_start().isoformat(),
        timezone=settings.timezone,
        end_offset=1,
    )


def weekly_partitions(settings: Settings) -> dg.WeeklyPartitionsDefinition:
    start = settings.partition_start()
    monday = start - dt.timedelta(days=start.weekday())
    return dg.WeeklyPartitionsDefinition(
        start_date=monday.isoformat(), day_offset=1, timezone=settings.timezone
    )


def window_days(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The days of a partition time window (end exclusive): one for a run, many for a backfill."""
    first, last = start.date(), end.date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days)]


@functools.cache
def _project_partitions() -> tuple[dg.DailyPartitionsDefinition, dg.WeeklyPartitionsDefinition]:
    settings = project_settings()
    return daily_partitions(settings), weekly_partitions(settings)


def __getattr__(name: str) -> dg.TimeWindowPartitionsDefinition:
    """`DAILY` and `WEEKLY`, built from the project settings (start_date, else the earliest
    landing folder) when a module first asks for them, not when this one is imported."""
    if name == "DAILY":
        return _project_partitions()[0]
    if name == "WEEKLY":
        return _project_partitions()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
