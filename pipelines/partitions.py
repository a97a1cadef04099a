"""Partitions: ingest by arrival day (CONTRACT §2), weekly reports by Monday weeks."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.partition_start().isoformat(), timezone="UTC", end_offset=1
    )


def weekly_partitions(settings: Settings) -> dg.WeeklyPartitionsDefinition:
    start = settings.partition_start()
    monday = start - dt.timedelta(days=start.weekday())
    return dg.WeeklyPartitionsDefinition(
        start_date=monday.isoformat(), day_offset=1, timezone="UTC"
    )


def window_days(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The days of a partition time window (end exclusive): one for a run, many for a backfill."""
    first, last = start.date(), end.date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days)]


def _project_settings() -> Settings:
    from pipelines.settings import load_settings

    return load_settings()


# Built once at import from the project settings (start_date, else the earliest landing folder).
DAILY = daily_partitions(_project_settings())
WEEKLY = weekly_partitions(_project_settings())
