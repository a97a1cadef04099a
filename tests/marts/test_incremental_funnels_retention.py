"""Incremental funnels, retention and cohorts (issue 14): after any sequence of loads, the
funnels (from the changed persons' attempts), retention (from the changed persons' returning
periods) and cohorts updated from the recorded changes equal a full rebuild, row by row.

The random sequences of tests/marts/test_incremental_marts.py (late events, re-sent copies,
re-loads with other content, out-of-order days, anonymous visits linked by a later sign-up,
`forget`), with funnels in every order mode, a filtered step, an exclusion and a step event
used twice, breakdowns on a lifted column, country and a property (so the entry event is read),
and retention definitions with start and return events.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import duckdb
import pytest
from test_incremental_dimensions import record_with_dimensions
from test_incremental_marts import DAYS, rebuilt_in_full, rows, write_day

from assets.ingest.load import forget_partition, load_partition
from assets.marts.changes import Refresh
from assets.marts.cohorts import update_cohorts
from assets.marts.funnels import update_funnels
from assets.marts.retention import update_retention
from assets.marts.sessions_users import update_sessions, update_users
from pipelines import warehouse
from pipelines.settings import Exclusion, Funnel, RetentionDefinition, Settings

FUNNELS = (
    Funnel("checkout", ("page_view", "signup", "purchase")),
    Funnel(
        "ios_to_buy",
        ("page_view", "page_view", "purchase"),
        window_seconds=3 * 86400,
        where=((), (("platform", ("ios",)),), ()),
        exclusions=(Exclusion("signup", 2, 3),),
    ),
    Funnel("strict_signup", ("page_view", "signup", "purchase"), order="strict"),
    Funnel("any_order", ("signup", "purchase", "page_view"), order="unordered"),
    Funnel(
        "plan_buyers",
        ("signup", "purchase"),
        window_seconds=86400,
        where=((("plan", ("pro", "1")),), ()),
    ),
)
RETENTION = (
    RetentionDefinition("any"),
    RetentionDefinition("buyers", start_event="signup", return_event="purchase"),
    RetentionDefinition("signed_up", start_event="signup"),
    RetentionDefinition("purchases", return_event="purchase"),
)
SETTINGS = Settings(
    home=Path("."),
    funnels=FUNNELS,
    retention=RETENTION,
    dimensions=("platform", "country", "properties.plan"),
    dimension_limit=2,
)
TABLES = (
    "funnel_steps",
    "funnel_daily",
    "funnel_user_attempts",
    "retention",
    "retention_users",
    "cohorts",
    "cohort_user_days",
    "cohort_members",
    "cohort_user_periods",
    "cohort_cells",
    "cohort_segment_sizes",
)


def update_marts(conn: duckdb.DuckDBPyConnection, settings: Settings = SETTINGS) -> list[Refresh]:
    update_sessions(conn, settings)
    update_users(conn, settings)
    return [
        update_cohorts(conn, settings),
        update_retention(conn, settings.retention, settings.timezone),
        update_funnels(conn, settings),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_random_load_sequences_update_funnels_retention_and_cohorts_to_the_full_rebuild(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    landing = tmp_path / "landing" / "events"
    path = tmp_path / "warehouse.duckdb"
    shared_ids: list[str] = []
    loaded: set = set()
    conn = warehouse.connect(path)
    try:
        update_marts(conn)  # no events yet: the first build is a full one
        for _ in range(10):
            action = rng.choice(["load", "load", "load", "reload", "forget", "nothing"])
            day = rng.choice(DAYS)  # any order: late days and earlier days after later ones
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
                count = rng.randint(1, 30)
                records = [record_with_dimensions(rng, day, shared_ids) for _ in range(count)]
                write_day(landing, day, records)
                load_partition(conn, landing, day)
                loaded.add(day)
            _, *others = update_marts(conn)
            # cohorts rebuild in full when new data changes the kept values (their segments);
            # funnels and retention count segments afresh from the kept attempts every time.
            assert {r.mode for r in others} == {"incremental"}
            conn.execute("checkpoint")
            expected = rebuilt_in_full(path, tmp_path / "full.duckdb", SETTINGS, TABLES)
            for table in TABLES:
                assert rows(conn, table) == expected[table], f"{table} differs after {action} {day}"
        assert rows(conn, "funnel_steps"), "the sequence built no funnel rows at all"
        assert rows(conn, "retention")
    finally:
        conn.close()


def test_other_funnels_or_definitions_rebuild_in_full(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "events"
    rng = random.Random(3)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        write_day(landing, DAYS[0], [record_with_dimensions(rng, DAYS[0], []) for _ in range(40)])
        load_partition(conn, landing, DAYS[0])
        assert {r.mode for r in update_marts(conn)} == {"full"}  # no prior state
        assert {r.mode for r in update_marts(conn)} == {"incremental"}
        fewer = Settings(
            home=Path("."),
            funnels=FUNNELS[:2],
            retention=RETENTION[:1],
            dimensions=SETTINGS.dimensions,
            dimension_limit=2,
        )
        assert update_funnels(conn, fewer).mode == "full"
        assert update_retention(conn, fewer.retention, fewer.timezone).mode == "full"
        zone = "America/Los_Angeles"
        assert update_retention(conn, fewer.retention, zone).mode == "full"
        # users rebuilt in full (no prior state once it is dropped): retention follows it.
        conn.execute("delete from mart_state where mart = 'users'")
        update_users(conn, fewer)
        assert update_retention(conn, fewer.retention, zone).mode == "full"
    finally:
        conn.close()
