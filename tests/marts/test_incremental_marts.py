"""Incremental marts (issue 14): after any sequence of loads, sessions, users, daily_metrics,
cohorts, retention and the funnels updated from the recorded changes equal a full rebuild, row
by row (tests/marts/test_incremental_funnels_retention.py: with every kind of funnel).

Random sequences of arrival-day loads through the real ingest (late events, re-sent copies,
re-loads with other content, out-of-order days, anonymous visits linked by a later sign-up,
`forget`); after each, the updated warehouse is copied and rebuilt in full from its events, and
every table must be identical. At the end the tables also match the pure-Python reference.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference
from random_arrivals import DAYS, random_record, write_day
from test_marts import assert_same_rows, fetch

from assets.ingest.load import forget_partition, load_partition
from assets.marts.changes import Refresh
from assets.marts.cohorts import build_cohorts, update_cohorts
from assets.marts.funnels import build_funnels, update_funnels
from assets.marts.metrics import build_daily_metrics, update_daily_metrics
from assets.marts.retention import build_retention, update_retention
from assets.marts.sessions_users import build_sessions, build_users, update_sessions, update_users
from pipelines import warehouse
from pipelines.settings import Settings

SETTINGS = Settings(home=Path("."), conversion_event="purchase", session_gap_seconds=1800)
TABLES = {
    "sessions": ("session_id",),
    "users": ("user_id",),
    "daily_metrics": ("metric_date", "dimension", "segment"),
    "cohorts": ("cohort_granularity", "cohort_start", "dimension", "segment", "period_index"),
    "cohort_user_days": ("user_id", "event_date"),
    "retention": ("definition", "granularity", "mode", "cohort_start", "period"),
    "funnel_steps": ("funnel", "dimension", "segment", "step_index"),
    "funnel_daily": ("funnel", "entry_date", "step_index"),
}


def update_marts(conn: duckdb.DuckDBPyConnection) -> list[Refresh]:
    return [
        update_sessions(conn, SETTINGS),
        update_users(conn, SETTINGS),
        update_daily_metrics(conn, SETTINGS),
        update_cohorts(conn),
        update_retention(conn, SETTINGS.retention, SETTINGS.timezone),
        update_funnels(conn, SETTINGS),
    ]


def rows(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    # Sorted by every column: the tables have no row order, and rows are compared whole.
    return conn.execute(f"select * from {table} order by all").fetchall()


def rebuilt_in_full(
    path: Path, scratch: Path, settings: Settings = SETTINGS, tables: Iterable[str] = TABLES
) -> dict[str, list[tuple]]:
    """The tables a full rebuild makes from the same warehouse's events (on a copy)."""
    shutil.copy(path, scratch)
    conn = warehouse.connect(scratch)
    try:
        build_sessions(conn, settings)
        build_users(conn, settings)
        build_daily_metrics(conn, settings)
        build_cohorts(conn, settings)
        build_retention(conn, settings.retention, settings.timezone)
        build_funnels(conn, settings)
        return {table: rows(conn, table) for table in tables}
    finally:
        conn.close()


def assert_equal_to_full_rebuild(
    conn: duckdb.DuckDBPyConnection, path: Path, scratch: Path, step: str
) -> None:
    conn.execute("checkpoint")
    expected = rebuilt_in_full(path, scratch)
    for table in TABLES:
        assert rows(conn, table) == expected[table], f"{table} differs after {step}"


def reference_events(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    result = conn.execute(
        "select event_id, user_id, event, ts, platform, channel, campaign, revenue from events"
    )
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


@pytest.mark.parametrize("seed", range(6))
def test_random_load_sequences_update_every_mart_to_the_full_rebuild(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    landing = tmp_path / "landing" / "events"
    path = tmp_path / "warehouse.duckdb"
    shared_ids: list[str] = []
    loaded: set[dt.date] = set()
    conn = warehouse.connect(path)
    try:
        update_marts(conn)  # no events yet: the first build is a full one
        for _ in range(10):
            action = rng.choice(["load", "load", "load", "reload", "forget", "nothing"])
            day = rng.choice(DAYS)  # any order: late days and earlier days after later ones
            if action == "reload" and loaded:
                day = rng.choice(sorted(loaded))  # other content for a day loaded before
            if action == "forget" and loaded:
                day = rng.choice(sorted(loaded))
                shutil.rmtree(landing / f"date={day.isoformat()}", ignore_errors=True)
                forget_partition(conn, day)
                loaded.discard(day)
            elif action == "nothing":
                load_partition(conn, landing, day)  # no folder or the same files again
            else:
                records = [random_record(rng, day, shared_ids) for _ in range(rng.randint(1, 25))]
                write_day(landing, day, records)
                load_partition(conn, landing, day)
                loaded.add(day)
            refreshes = update_marts(conn)
            assert {r.mode for r in refreshes} == {"incremental"}
            assert_equal_to_full_rebuild(conn, path, tmp_path / "full.duckdb", f"{action} {day}")
        events = reference_events(conn)
        gap, conversion = SETTINGS.session_gap_seconds, SETTINGS.conversion_event
        expected = {
            "sessions": reference.sessions(events, gap),
            "users": reference.users(events, conversion, gap),
            "daily_metrics": reference.daily_metrics(events, conversion, gap),
            "cohorts": reference.cohorts(events),
        }
        for table, wanted in expected.items():
            assert_same_rows(table, fetch(conn, table), wanted)
    finally:
        conn.close()


def test_a_load_records_exactly_the_user_days_it_changes(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "events"
    day, next_day = DAYS[1], DAYS[2]
    first = [
        {"event_id": "a", "user_id": "u1", "event": "page_view", "timestamp": f"{day}T10:00:00Z"},
        {"event_id": "b", "user_id": "u2", "event": "page_view", "timestamp": f"{day}T11:00:00Z"},
        {"anonymous_id": "d1", "event": "page_view", "timestamp": f"{day}T12:00:00Z"},
    ]
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        write_day(landing, day, first)
        load_partition(conn, landing, day)
        update_marts(conn)
        assert changes(conn) == []  # every mart applied them
        load_partition(conn, landing, day)  # the same files again: nothing changes
        assert changes(conn) == []
        late = {
            "event_id": "c",
            "user_id": "u2",
            "event": "purchase",
            "timestamp": f"{day}T23:00:00Z",
        }
        resent = {**first[0], "platform": "ios"}  # a later copy of event a: not the kept one
        sign_up = {  # links d1 to u3: d1's visit on `day` becomes u3's
            "anonymous_id": "d1",
            "user_id": "u3",
            "event": "signup",
            "timestamp": f"{next_day}T09:00:00Z",
        }
        write_day(landing, next_day, [late, resent, sign_up])
        load_partition(conn, landing, next_day)
        assert changes(conn) == [("d1", day), ("u2", day), ("u3", day), ("u3", next_day)]
    finally:
        conn.close()


def changes(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute(
        "select distinct user_id, event_date from mart_changes where source = 'events' order by all"
    ).fetchall()


def test_other_settings_rebuild_the_marts_in_full(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "events"
    rng = random.Random(1)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        write_day(landing, DAYS[0], [random_record(rng, DAYS[0], []) for _ in range(30)])
        load_partition(conn, landing, DAYS[0])
        assert {r.mode for r in update_marts(conn)} == {"full"}  # no prior state
        assert {r.mode for r in update_marts(conn)} == {"incremental"}
        shorter_gap = Settings(home=Path("."), session_gap_seconds=60)
        # Sessions rebuilt with another gap: the marts built from them cannot be updated.
        assert update_sessions(conn, shorter_gap).mode == "full"
        assert update_users(conn, SETTINGS).mode == "full"
        assert update_daily_metrics(conn, SETTINGS).mode == "full"
        assert update_cohorts(conn).mode == "full"
        assert update_retention(conn, SETTINGS.retention, SETTINGS.timezone).mode == "full"
    finally:
        conn.close()
