"""Incremental marts with `dimensions` configured (CONTRACT §3 Breakdowns): after any sequence of
loads, daily_metrics and cohorts updated from the recorded changes equal a full rebuild, also
when new data changes the kept values (which forces their full rebuild), and match the
pure-Python reference. The approach of tests/marts/test_incremental_marts.py, with country and
`properties` breakdowns and a small `dimension_limit`."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference_dimensions
from test_incremental_marts import DAYS, random_record, rebuilt_in_full, rows, write_day
from test_marts import assert_same_rows, fetch

from assets.ingest.load import forget_partition, load_partition
from assets.marts.changes import Refresh
from assets.marts.cohorts import update_cohorts
from assets.marts.metrics import update_daily_metrics
from assets.marts.sessions_users import update_sessions, update_users
from pipelines import warehouse
from pipelines.settings import Settings

SETTINGS = Settings(
    home=Path("."),
    dimensions=("country", "properties.plan", "platform"),
    dimension_limit=2,
)
# dimension_user_days and dimension_values too: updated for the changed days only, they must
# equal their rebuild from every event.
TABLES = ("daily_metrics", "cohorts", "dimension_user_days", "dimension_values")


def record_with_dimensions(
    rng: random.Random, arrival: dt.date, shared_ids: list[str]
) -> dict[str, Any]:
    """A record of tests/marts/test_incremental_marts.py, with a country and a plan (a number or
    text) often; three countries and three plans compete for two kept places."""
    record = random_record(rng, arrival, shared_ids)
    if rng.random() < 0.8:
        record["country"] = rng.choice(["NL", "NL", "DE", "US"])
    if rng.random() < 0.7:
        record["plan"] = rng.choice([1, "1", "pro", "free", ""])
    return record


def update_marts(conn: duckdb.DuckDBPyConnection) -> list[Refresh]:
    return [
        update_sessions(conn, SETTINGS),
        update_users(conn, SETTINGS),
        update_daily_metrics(conn, SETTINGS),
        update_cohorts(conn, SETTINGS),
    ]


def kept(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute("select dimension, value from dimension_values order by all").fetchall()


def reference_events(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    result = conn.execute(
        "select event_id, user_id, event, ts, platform, channel, campaign, country, revenue, "
        "properties::varchar as properties from events"
    )
    names = [d[0] for d in result.description]
    events = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    for event in events:
        event["properties"] = json.loads(event["properties"] or "{}")
    return events


@pytest.mark.parametrize("seed", range(5))
def test_random_loads_with_dimensions_update_to_the_full_rebuild(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    landing = tmp_path / "landing" / "events"
    path = tmp_path / "warehouse.duckdb"
    shared_ids: list[str] = []
    loaded: set[dt.date] = set()
    conn = warehouse.connect(path)
    try:
        update_marts(conn)
        for _ in range(10):
            before = kept(conn)
            action = rng.choice(["load", "load", "load", "reload", "forget", "nothing"])
            day = rng.choice(DAYS)
            if action == "reload" and loaded:
                day = rng.choice(sorted(loaded))
            if action == "forget" and loaded:
                day = rng.choice(sorted(loaded))
                shutil.rmtree(landing / f"date={day.isoformat()}", ignore_errors=True)
                forget_partition(conn, day)
                loaded.discard(day)
            elif action == "nothing":
                load_partition(conn, landing, day)
            else:
                records = [
                    record_with_dimensions(rng, day, shared_ids) for _ in range(rng.randint(1, 25))
                ]
                write_day(landing, day, records)
                load_partition(conn, landing, day)
                loaded.add(day)
            refreshes = update_marts(conn)
            if before and kept(conn) == before:
                assert [r.mode for r in refreshes] == ["incremental"] * 4
            conn.execute("checkpoint")
            expected = rebuilt_in_full(path, tmp_path / "full.duckdb", SETTINGS, TABLES)
            for table in TABLES:
                assert rows(conn, table) == expected[table], f"{table} differs after {action}"
        events = reference_events(conn)
        dims, limit = SETTINGS.dimensions, SETTINGS.dimension_limit
        assert_same_rows(
            "daily_metrics",
            fetch(conn, "daily_metrics"),
            reference_dimensions.daily_metrics(events, "purchase", 1800, dims, limit),
        )
        assert_same_rows(
            "cohorts", fetch(conn, "cohorts"), reference_dimensions.cohorts(events, dims, limit)
        )
    finally:
        conn.close()


def test_a_changed_kept_set_rebuilds_the_segment_marts_in_full(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "events"
    first, second = DAYS[0], DAYS[1]

    def visit(user: str, day: dt.date, country: str) -> dict[str, Any]:
        return {
            "user_id": user,
            "event": "page_view",
            "timestamp": f"{day}T10:00:00Z",
            "country": country,
        }

    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        # Three countries for two places: NL (2 users) and DE (1, before US by value) are kept.
        visits = [("a", "NL"), ("b", "NL"), ("c", "DE"), ("d", "US")]
        write_day(landing, first, [visit(user, first, country) for user, country in visits])
        load_partition(conn, landing, first)
        update_marts(conn)
        assert kept(conn)[:2] == [("country", "DE"), ("country", "NL")]
        # Two more US users: US overtakes DE, so DE's earlier rows become 'other'.
        write_day(landing, second, [visit("e", second, "US"), visit("f", second, "US")])
        load_partition(conn, landing, second)
        modes = [r.mode for r in update_marts(conn)]
        assert kept(conn)[:2] == [("country", "NL"), ("country", "US")]
        assert modes == ["incremental", "incremental", "full", "full"]
        first_day = conn.execute(
            "select segment, active_users from daily_metrics "
            "where metric_date = $day and dimension = 'country' order by all",
            {"day": first},
        ).fetchall()
        assert first_day == [("NL", 2), ("US", 1), ("other", 1)]
        # A load that keeps the kept values updates incrementally again.
        write_day(landing, DAYS[2], [visit("g", DAYS[2], "NL")])
        load_partition(conn, landing, DAYS[2])
        assert [r.mode for r in update_marts(conn)] == ["incremental"] * 4
    finally:
        conn.close()
