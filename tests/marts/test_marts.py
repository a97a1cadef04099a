"""users, sessions, daily_metrics, retention and cohorts: every row against the pure-Python
reference (tests/reference.py), on hand-made edge cases, seeded random data and hypothesis
event sets; the asset checks; and a real Dagster materialization."""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import reference
from conftest import insert_events
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.marts.cohorts import (
    build_cohorts,
    cohort_size_mismatches,
    cohort_sizes_sum_to_users,
    cohorts,
)
from assets.marts.metrics import (
    active_user_mismatches,
    active_users_match_events,
    build_daily_metrics,
    daily_metrics,
)
from assets.marts.retention import (
    build_retention,
    period_zero_failures,
    retention,
    retention_period_zero_is_one,
)
from assets.marts.sessions_users import build_sessions, build_users, sessions, users
from pipelines import warehouse
from pipelines.resources import Warehouse
from pipelines.settings import Settings
from pipelines.sql import run_sql_file

# Non-default on purpose (CONTRACT §1): the models must read both from the settings.
CONVERSION = "checkout_done"
GAP = 600
SETTINGS = Settings(home=Path("."), conversion_event=CONVERSION, session_gap_seconds=GAP)

KEYS = {
    "sessions": ("session_id",),
    "users": ("user_id",),
    "daily_metrics": ("metric_date", "dimension", "segment"),
    "retention": ("definition", "granularity", "mode", "cohort_start", "period"),
    "cohorts": ("cohort_granularity", "cohort_start", "dimension", "segment", "period_index"),
}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def ev(event_id: str, user: str, event: str, ts: str, **fields: Any) -> dict[str, Any]:
    """An event as the reference sees it (and as `insert_events` stores it)."""
    row = {
        "event_id": event_id,
        "user_id": user,
        "event": event,
        "ts": at(ts),
        "platform": "web",
        "channel": "organic",
        "campaign": None,
        "revenue": None,
    }
    row.update(fields)
    return row


# Hand-made edge cases (2024 is a leap year; 2024-03-03 is a Sunday, 2024-03-04 a Monday).
EDGE_EVENTS = [
    # alice: one session across midnight and a month end (gaps of 599 s and exactly 600 s),
    # then a gap of 601 s starts a new one on another platform with a conversion.
    ev("a1", "alice", "page_view", "2024-01-31 23:55:00", campaign="winter"),
    ev("a2", "alice", "page_view", "2024-02-01 00:04:59"),
    ev("a3", "alice", "add_to_cart", "2024-02-01 00:14:59"),
    ev("a4", "alice", CONVERSION, "2024-02-01 00:25:00", platform="ios", revenue=10.0),
    ev("a5", "alice", "page_view", "2024-02-29 23:59:59"),
    ev("a6", "alice", "page_view", "2024-03-01 00:00:00", platform="android"),
    ev("a7", "alice", "page_view", "2024-03-03 23:59:59"),
    ev("a8", "alice", CONVERSION, "2024-03-04 00:00:00", revenue=4.5),
    # bob: two first events at the same instant; the smaller event_id (b1: android, no channel)
    # is the first. Conversions with NULL and real revenue; several segments in one day.
    ev("b2", "bob", "page_view", "2024-02-03 12:00:00", platform="ios", campaign="spring"),
    ev("b1", "bob", "page_view", "2024-02-03 12:00:00", platform="android", channel=None),
    ev("b3", "bob", CONVERSION, "2024-02-03 12:05:00", platform="ios", revenue=None),
    ev("b4", "bob", CONVERSION, "2024-02-03 12:06:00", channel="ads", revenue=5.5),
    ev("b5", "bob", "page_view", "2024-03-10 08:00:00", platform=None, channel="email"),
    # carol: a single event, on a Monday, without platform.
    ev("c1", "carol", "page_view", "2024-03-04 00:00:00", platform=None, channel="ads"),
    # dave: back after more than 30 days, and on the last event date.
    ev("d1", "dave", "signup", "2024-02-05 09:00:00", channel="referral"),
    ev("d2", "dave", "page_view", "2024-03-20 09:00:00", channel="referral"),
    ev("d3", "dave", CONVERSION, "2024-04-02 18:30:00", channel="referral", revenue=20.0),
    # erin: the default conversion name is not the configured one; revenue on a page view
    # still counts as revenue.
    ev("e1", "erin", "purchase", "2024-02-03 23:59:59", platform="ios", channel="ads"),
    ev("e2", "erin", "page_view", "2024-02-04 00:00:00", platform="ios", revenue=3.0),
    # frank: first seen at midnight on a Monday, with a long tail of tied events.
    ev("f1", "frank", "page_view", "2024-02-26 00:00:00", channel="email"),
    ev("f3", "frank", "page_view", "2024-02-26 00:10:00", channel="email"),
    ev("f2", "frank", "page_view", "2024-02-26 00:10:00", channel="ads"),
    ev("f4", "frank", CONVERSION, "2024-02-26 00:20:00", channel="email", revenue=1.25),
    # gina: no platform or campaign on her first event, both on the next one.
    ev("g1", "gina", "page_view", "2024-03-15 10:00:00", platform=None),
    ev("g2", "gina", "page_view", "2024-03-16 10:00:00", platform="ios", campaign="summer"),
]


def build_marts(conn: duckdb.DuckDBPyConnection, settings: Settings = SETTINGS) -> None:
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_daily_metrics(conn, settings)
    build_retention(conn, settings.retention)
    build_cohorts(conn)


def expected_tables(
    events: list[dict[str, Any]], settings: Settings = SETTINGS
) -> dict[str, list[dict[str, Any]]]:
    return {
        "sessions": reference.sessions(events, GAP),
        "users": reference.users(events, CONVERSION, GAP),
        "daily_metrics": reference.daily_metrics(events, CONVERSION, GAP),
        "retention": reference.retention(events, settings.retention),
        "cohorts": reference.cohorts(events),
    }


def fetch(conn: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    result = conn.execute(f"select * from {table}")
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def assert_same_rows(
    table: str, actual: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    """Same keys, same columns; counts exactly, floats to 1e-6."""
    keys = KEYS[table]
    by_key = {tuple(r[k] for k in keys): r for r in actual}
    assert len(by_key) == len(actual), f"{table}: duplicate keys"
    wanted = {tuple(r[k] for k in keys): r for r in expected}
    assert sorted(by_key, key=str) == sorted(wanted, key=str), f"{table}: different rows"
    for key, row in wanted.items():
        got = by_key[key]
        assert set(got) >= set(row), f"{table}: missing columns {set(row) - set(got)}"
        for column, value in row.items():
            if isinstance(value, float):
                assert math.isclose(got[column], value, abs_tol=1e-6), (table, key, column)
            else:
                assert got[column] == value, (table, key, column, got[column], value)


def assert_marts_match_reference(
    conn: duckdb.DuckDBPyConnection,
    events: list[dict[str, Any]],
    tables: tuple[str, ...],
    settings: Settings = SETTINGS,
) -> None:
    expected = expected_tables(events, settings)
    for table in tables:
        assert_same_rows(table, fetch(conn, table), expected[table])


@pytest.fixture
def edge_conn(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    insert_events(conn, EDGE_EVENTS)
    build_marts(conn)
    return conn


@pytest.mark.parametrize("table", list(KEYS))
def test_every_row_matches_the_reference_on_edge_cases(edge_conn, table: str) -> None:
    assert_marts_match_reference(edge_conn, EDGE_EVENTS, (table,))


def test_gap_of_exactly_session_gap_continues_and_one_second_more_splits(edge_conn) -> None:
    rows = edge_conn.execute(
        "select session_id, started_at, events, platform from sessions "
        "where user_id = 'alice' order by started_at limit 2"
    ).fetchall()
    assert rows == [
        ("alice-1", at("2024-01-31 23:55:00"), 3, "web"),
        ("alice-2", at("2024-02-01 00:25:00"), 1, "ios"),
    ]


def test_acquisition_comes_from_the_first_event_with_ties_broken_by_event_id(edge_conn) -> None:
    row = edge_conn.execute(
        "select acquisition_platform, acquisition_channel, acquisition_campaign, purchases, "
        "revenue from users where user_id = 'bob'"
    ).fetchall()[0]
    assert row == ("android", None, None, 2, 5.5)


def test_day_without_events_has_an_all_row_of_zeros(edge_conn) -> None:
    rows = edge_conn.execute(
        "select dimension, segment, active_users, sessions, revenue, conversion_rate "
        "from daily_metrics where metric_date = '2024-02-02'"
    ).fetchall()
    assert rows == [("all", "all", 0, 0, 0.0, 0.0)]


def test_null_platform_is_the_unknown_segment(edge_conn) -> None:
    row = edge_conn.execute(
        "select active_users, new_users from daily_metrics "
        "where metric_date = '2024-03-04' and dimension = 'platform' and segment = 'unknown'"
    ).fetchall()[0]
    assert row == (1, 1)


def test_null_acquisition_platform_stays_null_and_is_not_taken_from_a_later_event(
    edge_conn,
) -> None:
    row = edge_conn.execute(
        "select acquisition_platform, acquisition_campaign from users where user_id = 'gina'"
    ).fetchall()[0]
    assert row == (None, None)


def test_retention_rows_stop_at_periods_started_by_the_last_event_date(edge_conn) -> None:
    last = edge_conn.execute(
        "select granularity, max(period) from retention where cohort_start = '2024-03-04' "
        "or (granularity = 'month' and cohort_start = '2024-03-01') group by 1 order by 1"
    ).fetchall()
    # Last event date 2024-04-02: day 29 of the 2024-03-04 cohort, its week 4, April (month 1).
    assert last == [("day", 29), ("month", 1), ("week", 4)]


def test_cohort_periods_follow_the_retention_rule(edge_conn) -> None:
    periods = edge_conn.execute(
        "select cohort_granularity, max(period_index) from cohorts "
        "where cohort_start in ('2024-01-29', '2024-01-01') and dimension = 'all' group by 1 "
        "order by 1"
    ).fetchall()
    # The week of 2024-01-29 reaches week 9 (2024-04-01); January 2024 reaches April (3).
    assert periods == [("month", 3), ("week", 9)]


def test_no_events_gives_empty_marts_and_quiet_checks(conn) -> None:
    run_sql_file(conn, "staging/tables.sql")
    build_marts(conn)
    assert {t: len(fetch(conn, t)) for t in KEYS} == dict.fromkeys(KEYS, 0)
    assert active_user_mismatches(conn) == cohort_size_mismatches(conn) == []


def random_events(seed: int, n: int = 400) -> list[dict[str, Any]]:
    """Seeded random events: many users and segments, ties, gaps around GAP, mostly within
    ~20 weeks plus a tail over 14 months (so week 12 and month 12 are reached)."""
    rng = random.Random(seed)
    start = at("2024-01-27 00:00:00")
    rows = []
    for i in range(n):
        user = f"u{int(rng.random() ** 2 * 40)}"
        spread = 3600 * 3400 if rng.random() < 0.95 else 86400 * 430
        seconds = rng.choice([0, 300, 599, 600, 601, 3600]) + 1800 * rng.randrange(spread // 1800)
        rows.append(
            {
                "event_id": f"r{rng.randrange(10**6):06d}-{i}",
                "user_id": user,
                "event": rng.choice(["page_view", "page_view", "signup", CONVERSION, "purchase"]),
                "ts": start + dt.timedelta(seconds=seconds),
                "platform": rng.choice(["web", "ios", "android", None]),
                "channel": rng.choice(["organic", "ads", None]),
                "campaign": rng.choice([None, "c1"]),
                "revenue": rng.choice([None, None, 1.5, 20.0]),
            }
        )
    return rows


@pytest.mark.parametrize("seed", [1, 2])
def test_every_row_matches_the_reference_on_random_events(conn, seed: int) -> None:
    events = random_events(seed)
    insert_events(conn, events)
    build_marts(conn)
    assert_marts_match_reference(conn, events, tuple(KEYS))


EVENT = st.fixed_dictionaries(
    {
        "event_id": st.integers(0, 10**6).map(lambda n: f"h{n:07d}"),
        "user_id": st.sampled_from(["u1", "u2", "u3"]),
        "event": st.sampled_from(["view", CONVERSION]),
        # 300-second steps from 2024-02-28 22:00 across midnight, leap day and month end, so
        # ties and gaps of exactly GAP (600 s) or GAP + 1 happen often.
        "ts": st.builds(
            lambda steps, jitter: (
                at("2024-02-28 22:00:00") + dt.timedelta(seconds=300 * steps + jitter)
            ),
            st.integers(0, 1000),
            st.sampled_from([0, 0, 1, 299]),
        ),
        "platform": st.sampled_from(["web", "ios", None]),
        "channel": st.sampled_from(["ads", None]),
        "campaign": st.none(),
        "revenue": st.sampled_from([None, 0.5, 2.25]),
    }
)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(EVENT, min_size=1, max_size=25, unique_by=lambda e: e["event_id"]))
def test_every_mart_matches_the_reference_on_any_events(events: list[dict[str, Any]]) -> None:
    conn = warehouse.connect(Path(":memory:"))
    try:
        insert_events(conn, events)
        build_marts(conn)
        assert_marts_match_reference(conn, events, tuple(KEYS))
    finally:
        conn.close()


# --- asset checks ---------------------------------------------------------------------------


def test_checks_find_nothing_wrong_on_good_data(edge_conn) -> None:
    assert active_user_mismatches(edge_conn) == []
    assert period_zero_failures(edge_conn) == []
    assert cohort_size_mismatches(edge_conn) == []


def test_active_users_check_catches_a_wrong_count_and_a_missing_day(edge_conn) -> None:
    edge_conn.execute(
        "update daily_metrics set active_users = active_users + 1 "
        "where metric_date = '2024-02-03' and dimension = 'all'"
    )
    edge_conn.execute(
        "delete from daily_metrics where metric_date = '2024-03-04' and dimension = 'all'"
    )
    assert active_user_mismatches(edge_conn) == [
        (dt.date(2024, 2, 3), 3, 2),
        (dt.date(2024, 3, 4), None, 2),
    ]


def test_period_zero_check_catches_a_cohort_below_one(edge_conn) -> None:
    edge_conn.execute(
        "update retention set retention_rate = 0.5 "
        "where granularity = 'week' and mode = 'exact' and period = 0 "
        "and cohort_start = '2024-01-29'"
    )
    assert period_zero_failures(edge_conn) == [("week", "exact", dt.date(2024, 1, 29), 0.5)]


def test_cohort_size_check_catches_a_lost_segment(edge_conn) -> None:
    edge_conn.execute(
        "delete from cohorts where cohort_granularity = 'month' and dimension = 'channel' "
        "and segment = 'referral'"
    )
    assert cohort_size_mismatches(edge_conn) == [("month", "channel", 6, 7)]


# --- Dagster --------------------------------------------------------------------------------

MART_ASSETS = [sessions, users, daily_metrics, retention, cohorts]
MART_CHECKS = [active_users_match_events, retention_period_zero_is_one, cohort_sizes_sum_to_users]


@pytest.fixture
def home_with_events(home: Path) -> Path:
    with warehouse.writer(home) as conn:
        insert_events(conn, EDGE_EVENTS)
    config = home / "eventpulse.yaml"
    config.write_text(f"conversion_event: {CONVERSION}\nsession_gap_seconds: {GAP}\n")
    return home


def test_materializing_the_assets_builds_tables_equal_to_the_reference(
    home_with_events: Path,
) -> None:
    home = home_with_events
    resource = Warehouse(home=str(home), config_path=str(home / "eventpulse.yaml"))
    result = dg.materialize(
        [dg.AssetSpec("events"), *MART_ASSETS, *MART_CHECKS], resources={"warehouse": resource}
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 3 and all(e.passed for e in evaluations)
    materializations = [e.materialization for e in result.get_asset_materialization_events()]
    counts = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value for m in materializations}
    with warehouse.reader(home) as conn:
        assert counts == {t: len(fetch(conn, t)) for t in KEYS}
        assert_marts_match_reference(conn, EDGE_EVENTS, tuple(KEYS))
    assert (home / "reports" / "assets" / "retention.png").stat().st_size > 0

    # The same checks fail once the data is broken.
    with warehouse.writer(home) as conn:
        conn.execute("update retention set retention_rate = 0.9 where period = 0")
        conn.execute("update daily_metrics set active_users = 0 where dimension = 'all'")
        conn.execute("delete from cohorts where dimension = 'platform' and segment = 'ios'")
    for check in MART_CHECKS:
        assert not check(warehouse=resource).passed, check.name
