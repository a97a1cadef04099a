"""Funnels (CONTRACT §3 Funnel semantics): every row of `funnel_steps` and `funnel_daily` equals
the pure-Python reference (`reference_funnels.py`) on hand-made edge cases and on
hypothesis-generated events, for ordered, strict and unordered funnels."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import reference_funnels as ref
import yaml
from conftest import insert_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.marts.funnels import (
    build_funnels,
    funnel_daily_never_increase,
    funnel_marts,
    funnel_steps_never_increase,
    increasing_step_rows,
)
from pipelines import warehouse
from pipelines.resources import Warehouse
from pipelines.settings import Funnel, Settings, parse_settings
from pipelines.sql import run_sql_file

# 23:58 UTC: attempts entered just before midnight finish on the next day.
START = dt.datetime(2026, 3, 9, 23, 58)
HOUR = 3600

# Non-default event names and windows, read the way eventpulse.yaml is (window_days included).
CONFIG = """
funnels:
  - name: activation
    steps: [visit, register, first_order]
    window_seconds: 3600
  - name: double_visit
    steps: [visit, visit, first_order]
    window_days: 1
  - name: strict_signup
    steps: [visit, register]
    window_days: 1
    order: strict
  - name: any_order
    steps: [register, visit, first_order]
    window_seconds: 3600
    order: unordered
  - name: ghost
    steps: [teleport, visit]
"""
FUNNELS = parse_settings(yaml.safe_load(CONFIG), home=Path(".")).funnels


def at(seconds: int) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def ev(event_id: str, user: str, event: str, seconds: int, **fields: Any) -> ref.Event:
    return ref.Event(event_id, user, event, at(seconds), **fields)


# One story per user; event ids are chosen so that id order and time order disagree on ties.
EDGE_EVENTS = [
    # Ties: register has the same time as visit and a smaller id; it still comes "at or after".
    ev("t2", "tie", "visit", 0),
    ev("t1", "tie", "register", 0),
    ev("t3", "tie", "first_order", 0),
    # Repeated step events: two visits, two registers.
    ev("r1", "repeat", "visit", 0),
    ev("r2", "repeat", "visit", 10),
    ev("r3", "repeat", "register", 20),
    ev("r4", "repeat", "register", 30),
    ev("r5", "repeat", "first_order", 40),
    # Re-entry after a failed attempt: the first visit's register comes too late; the second
    # attempt reaches step 2 but its first_order is also too late.
    ev("e1", "reentry", "visit", 0),
    ev("e2", "reentry", "register", 4000),
    ev("e3", "reentry", "visit", 5000),
    ev("e4", "reentry", "register", 5100),
    ev("e5", "reentry", "first_order", 5000 + HOUR + 1),
    # The window boundary: exactly at t0 + window is in, one second later is out.
    ev("i1", "edge_in", "visit", 0),
    ev("i2", "edge_in", "register", HOUR),
    ev("i3", "edge_in", "first_order", HOUR),
    ev("o1", "edge_out", "visit", 0),
    ev("o2", "edge_out", "register", HOUR + 1),
    # Midnight: entered at 23:59:40, finished after midnight.
    ev("m1", "midnight", "visit", 100),
    ev("m2", "midnight", "register", 200),
    ev("m3", "midnight", "first_order", 300),
    # Month end: entered on March 31 at 23:59:30, registered on April 1.
    ev("y1", "month_end", "visit", 22 * 86400 + 90),
    ev("y2", "month_end", "register", 22 * 86400 + 150),
    # Several segments: the ios attempt fails, the android one (later) is counted.
    ev("s1", "segments", "visit", 0, platform="ios", channel="ads"),
    ev("s2", "segments", "visit", 100, platform="android", channel="email"),
    ev("s3", "segments", "register", HOUR + 50, platform="web"),
    # Two attempts reach the furthest step: the earlier one (ios) is counted.
    ev("c1", "earliest", "visit", 0, platform="ios"),
    ev("c2", "earliest", "visit", 10, platform="web"),
    ev("c3", "earliest", "register", 20),
    # Simultaneous entries on two platforms: the smaller event id gives the segment, whether the
    # attempt stops at step 1 or goes on.
    ev("p2", "simultaneous", "visit", 0, platform="ios"),
    ev("p1", "simultaneous", "visit", 0, platform="android"),
    ev("q2", "simultaneous_on", "visit", 0, platform="ios"),
    ev("q1", "simultaneous_on", "visit", 0, platform="android"),
    ev("q3", "simultaneous_on", "register", 10),
    # The same event twice at one time fills two steps of double_visit.
    ev("d2", "double", "visit", 50),
    ev("d1", "double", "visit", 50),
    ev("d3", "double", "first_order", 60),
    # Strict: a noise event between visit and register breaks the first attempt only.
    ev("n1", "strict", "visit", 0),
    ev("n2", "strict", "scroll", 5),
    ev("n3", "strict", "visit", 10),
    ev("n4", "strict", "register", 20),
    # Unordered: first_order before register before visit, all within the hour.
    ev("a1", "backwards", "first_order", 0, channel=None),
    ev("a2", "backwards", "register", 60, channel=None),
    ev("a3", "backwards", "visit", 120, channel=None),
    # An empty segment: a platform nobody entered a funnel from; a NULL platform.
    ev("z1", "bystander", "scroll", 0, platform="tv"),
    ev("z2", "nobody", "scroll", 0, platform=None),
]


def load(conn: duckdb.DuckDBPyConnection, events: list[ref.Event]) -> None:
    if not events:
        run_sql_file(conn, "staging/tables.sql")  # an empty `events`
        return
    insert_events(conn, [event_row(e) for e in events])


def event_row(e: ref.Event) -> dict[str, Any]:
    """A reference event as `insert_events` stores it."""
    return {
        "event_id": e.event_id,
        "user_id": e.user_id,
        "event": e.event,
        "ts": e.ts,
        "platform": e.platform,
        "channel": e.channel,
        "campaign": e.campaign,
        "country": e.country,
        "properties": e.properties,
        "revenue": None,
    }


def build(conn: duckdb.DuckDBPyConnection, funnels: tuple[Funnel, ...]) -> dict[str, int]:
    return build_funnels(conn, Settings(home=Path("."), funnels=funnels))


def fetch(conn: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    relation = conn.sql(f"select * from {table}")
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


KEYS = {
    "funnel_steps": ("funnel", "dimension", "segment", "step_index"),
    "funnel_daily": ("funnel", "entry_date", "step_index"),
}


def assert_same_rows(table: str, actual: list[dict], expected: list[dict]) -> None:
    """Counts and keys exactly, rates and times to 1e-6."""

    def key(row: dict) -> tuple:
        return tuple(row[k] for k in KEYS[table])

    actual_by_key = {key(r): r for r in actual}
    expected_by_key = {key(r): r for r in expected}
    assert len(actual_by_key) == len(actual), f"{table}: duplicate keys"
    assert sorted(actual_by_key) == sorted(expected_by_key), f"{table}: different rows"
    for k, want in expected_by_key.items():
        got = actual_by_key[k]
        for column, value in want.items():
            if isinstance(value, float) or isinstance(got[column], float):
                assert value is not None and got[column] is not None, (table, k, column, got)
                assert math.isclose(got[column], value, abs_tol=1e-6), (table, k, column, got)
            else:
                assert got[column] == value, (table, k, column, got[column], value)


def assert_matches_reference(
    conn: duckdb.DuckDBPyConnection, events: list[ref.Event], funnels: tuple[Funnel, ...]
) -> None:
    expected = ref.funnel_tables(events, funnels)
    for table in KEYS:
        assert_same_rows(table, fetch(conn, table), expected[table])


@pytest.fixture
def edge_conn(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    load(conn, EDGE_EVENTS)
    build(conn, FUNNELS)
    return conn


def users_by_step(
    conn: duckdb.DuckDBPyConnection, funnel: str, dimension: str, segment: str
) -> list:
    return conn.execute(
        """
        select users from funnel_steps
        where funnel = $f and dimension = $d and segment = $s order by step_index
        """,
        {"f": funnel, "d": dimension, "s": segment},
    ).fetchall()


def counted(conn: duckdb.DuckDBPyConnection, funnel: str, user: str) -> tuple:
    return conn.execute(
        """
        select furthest_step, entry_ts, entry_date, platform, channel
        from funnel_attempts where funnel = $f and user_id = $u
        """,
        {"f": funnel, "u": user},
    ).fetchall()[0]


@pytest.mark.parametrize("table", list(KEYS))
def test_every_row_matches_the_reference_on_edge_cases(edge_conn, table: str) -> None:
    expected = ref.funnel_tables(EDGE_EVENTS, FUNNELS)[table]
    assert_same_rows(table, fetch(edge_conn, table), expected)


def test_a_step_at_exactly_the_window_end_counts_and_one_second_later_does_not(edge_conn) -> None:
    assert counted(edge_conn, "activation", "edge_in")[0] == 3
    assert counted(edge_conn, "activation", "edge_out")[0] == 1


def test_a_step_at_the_same_time_as_the_previous_one_counts(edge_conn) -> None:
    assert counted(edge_conn, "activation", "tie")[0] == 3
    assert counted(edge_conn, "strict_signup", "tie")[0] == 2


def test_re_entry_after_a_failed_attempt_is_the_counted_attempt(edge_conn) -> None:
    furthest, entry_ts, *_ = counted(edge_conn, "activation", "reentry")
    assert (furthest, entry_ts) == (2, at(5000))


def test_the_earliest_attempt_reaching_the_furthest_step_gives_the_segment(edge_conn) -> None:
    assert counted(edge_conn, "activation", "segments")[1:] == (
        at(100),
        START.date(),
        "android",
        "email",
    )
    assert counted(edge_conn, "activation", "earliest")[1:4:2] == (at(0), "ios")


def test_simultaneous_entries_are_ordered_by_event_id(edge_conn) -> None:
    assert counted(edge_conn, "activation", "simultaneous")[3] == "android"
    assert counted(edge_conn, "activation", "simultaneous_on")[::3] == (2, "android")


def test_the_entry_date_is_the_day_the_attempt_started_even_past_midnight(edge_conn) -> None:
    furthest, _, entry_date, *_ = counted(edge_conn, "activation", "midnight")
    assert (furthest, entry_date) == (3, START.date())
    furthest, _, entry_date, *_ = counted(edge_conn, "activation", "month_end")
    assert (furthest, entry_date) == (2, dt.date(2026, 3, 31))


def test_one_event_fills_at_most_one_step(edge_conn) -> None:
    # "repeat" visits twice (10 s apart), "double" twice at one time; "tie" visits once.
    assert counted(edge_conn, "double_visit", "repeat")[0] == 3
    assert counted(edge_conn, "double_visit", "double")[0] == 3
    assert counted(edge_conn, "double_visit", "tie")[0] == 1


def test_strict_attempt_breaks_on_any_event_in_between(edge_conn) -> None:
    assert counted(edge_conn, "strict_signup", "strict")[:2] == (2, at(10))
    assert counted(edge_conn, "strict_signup", "repeat")[:2] == (2, at(10))


def test_unordered_steps_count_in_any_order(edge_conn) -> None:
    assert counted(edge_conn, "any_order", "backwards")[0] == 3
    assert counted(edge_conn, "any_order", "backwards")[4] == "unknown"


def test_a_funnel_whose_first_step_never_occurs_has_zero_rows(edge_conn) -> None:
    rows = edge_conn.execute(
        """
        select distinct step_index, users, conversion_from_first, conversion_from_previous
        from funnel_steps where funnel = 'ghost'
        """
    ).fetchall()
    assert sorted(rows) == [(1, 0, None, 1.0), (2, 0, None, None)]
    daily = edge_conn.execute("select count(*) from funnel_daily where funnel = 'ghost'")
    assert daily.fetchall() == [(0,)]


def test_a_segment_nobody_entered_from_shows_zeros(edge_conn) -> None:
    assert users_by_step(edge_conn, "activation", "platform", "tv") == [(0,), (0,), (0,)]
    assert users_by_step(edge_conn, "activation", "platform", "unknown") == [(0,), (0,), (0,)]
    assert users_by_step(edge_conn, "activation", "channel", "unknown") == [(1,), (0,), (0,)]


def test_funnel_users_never_increase_along_steps(edge_conn) -> None:
    assert increasing_step_rows(edge_conn, "funnel_steps") == []
    assert increasing_step_rows(edge_conn, "funnel_daily") == []


def test_times_at_the_ends_of_the_calendar_match_the_reference() -> None:
    # Packed sort keys must hold any timestamp (year 1 BC from epoch seconds is valid input).
    early, late = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 30)
    events = [
        ref.Event("a1", "ancient", "visit", early),
        ref.Event("a2", "ancient", "register", early + dt.timedelta(seconds=5)),
        ref.Event("f1", "future", "visit", late),
        ref.Event("f2", "future", "register", late + dt.timedelta(seconds=5)),
        ref.Event("f3", "future", "first_order", late + dt.timedelta(seconds=9)),
        ref.Event("f4", "future", "visit", late + dt.timedelta(seconds=12)),
        # Simultaneous entries before 1970 (negative epochs): the smallest event id decides,
        # whatever the order in which the events were stored.
        ref.Event("t2", "old_tie", "visit", dt.datetime(1960, 1, 1), platform="ios"),
        ref.Event("t1", "old_tie", "visit", dt.datetime(1960, 1, 1), platform="android"),
        ref.Event("s2", "old_tie_on", "visit", dt.datetime(1960, 1, 1), platform="ios"),
        ref.Event("s1", "old_tie_on", "visit", dt.datetime(1960, 1, 1), platform="android"),
        ref.Event("s3", "old_tie_on", "register", dt.datetime(1960, 1, 1, 0, 0, 5)),
    ]
    conn = warehouse.connect(Path(":memory:"))
    try:
        load(conn, events)
        build(conn, FUNNELS)
        assert_matches_reference(conn, events, FUNNELS)
        assert users_by_step(conn, "activation", "all", "all") == [(4,), (3,), (1,)]
        assert counted(conn, "activation", "old_tie")[::3] == (1, "android")
        assert counted(conn, "activation", "old_tie_on")[::3] == (2, "android")
    finally:
        conn.close()


# Hypothesis: few users, names and times 30 s apart, windows that are multiples of 30 s, so ties,
# repeats and exact window boundaries are common. Event ids are shuffled against time.
NAMES = ("a", "b", "c", "x")


@st.composite
def event_sets(draw: st.DrawFn) -> list[ref.Event]:
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("u1", "u2", "u3")),
                st.sampled_from(NAMES),
                st.integers(0, 12),
                st.sampled_from(("web", "ios", None)),
                st.sampled_from(("ads", "organic")),
            ),
            max_size=24,
        )
    )
    ids = draw(st.permutations([f"e{n:02d}" for n in range(len(raw))]))
    return [
        ev(event_id, user, name, 30 * slot, platform=platform, channel=channel)
        for event_id, (user, name, slot, platform, channel) in zip(ids, raw, strict=True)
    ]


def funnel_of(order: str) -> st.SearchStrategy[Funnel]:
    return st.builds(
        Funnel,
        name=st.just(order),
        steps=st.lists(st.sampled_from(NAMES[:3]), min_size=2, max_size=4).map(tuple),
        window_seconds=st.sampled_from((30, 60, 90, 150)),
        order=st.just(order),
    )


def distinct_steps_funnel() -> st.SearchStrategy[Funnel]:
    """Ordered funnels whose steps are all different events (funnel_chain.sql's case)."""
    return st.builds(
        Funnel,
        name=st.just("ordered_distinct"),
        steps=st.permutations(NAMES[:3]).flatmap(
            lambda names: st.integers(2, 3).map(lambda n: tuple(names[:n]))
        ),
        window_seconds=st.sampled_from((30, 60, 90, 150)),
        order=st.just("ordered"),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=event_sets(),
    ordered=funnel_of("ordered"),
    distinct=distinct_steps_funnel(),
    strict=funnel_of("strict"),
    unordered=funnel_of("unordered"),
)
def test_random_events_match_the_reference_in_every_mode(
    events: list[ref.Event], ordered: Funnel, distinct: Funnel, strict: Funnel, unordered: Funnel
) -> None:
    conn = warehouse.connect(Path(":memory:"))
    try:
        load(conn, events)
        funnels = (ordered, distinct, strict, unordered)
        build(conn, funnels)
        assert_matches_reference(conn, events, funnels)
    finally:
        conn.close()


def test_check_fails_when_users_increase_along_steps(home: Path) -> None:
    with warehouse.writer(home) as conn:
        load(conn, EDGE_EVENTS)
        build(conn, FUNNELS)
        conn.execute("update funnel_steps set users = users + 100 where step_index = 2")
        conn.execute("update funnel_daily set users = users + 100 where step_index = 3")
    resource = Warehouse(home=str(home))
    assert not funnel_steps_never_increase(resource).passed
    assert not funnel_daily_never_increase(resource).passed


def test_assets_materialize_with_metadata_and_a_chart(home: Path) -> None:
    config = home / "eventpulse.yaml"
    config.write_text(CONFIG)
    with warehouse.writer(home) as conn:
        load(conn, EDGE_EVENTS)
    result = dg.materialize(
        [funnel_marts, funnel_steps_never_increase, funnel_daily_never_increase],
        resources={"warehouse": Warehouse(home=str(home), config_path=str(config))},
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 and all(c.passed for c in checks)
    metadata = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    steps = sum(len(f.steps) for f in FUNNELS)
    segments = len({(d, s) for d, s in ref._segments(EDGE_EVENTS)})
    assert metadata["funnel_steps"]["dagster/row_count"].value == steps * segments
    assert "| 1 | visit |" in metadata["funnel_steps"]["preview"].value
    assert (home / "reports" / "assets" / "funnel_activation.png").stat().st_size > 0
