"""`dimensions` and `dimension_limit` (CONTRACT §1, §3 Breakdowns): settings, the kept values in
`dimension_values`, and daily_metrics, cohorts and funnel_steps against the pure-Python
reference (tests/reference_dimensions.py) for other dimension lists and small limits."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference_dimensions
import reference_funnels
from conftest import insert_events
from test_funnels import event_row
from test_marts import assert_same_rows, ev, fetch

from assets.marts.cohorts import build_cohorts, cohort_size_mismatches
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.sessions_users import build_sessions, build_users
from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import Funnel, Settings, parse_settings

FOUR = ("platform", "country", "properties.app_version", "campaign")
GAP = 1800


def settings_with(dimensions: tuple[str, ...], limit: int, **more: Any) -> Settings:
    return Settings(home=Path("."), dimensions=dimensions, dimension_limit=limit, **more)


# --- settings -------------------------------------------------------------------------------


def test_dimensions_default_to_platform_and_channel_with_limit_25() -> None:
    parsed = parse_settings({}, home=Path("."))
    assert parsed.dimensions == ("platform", "channel")
    assert parsed.dimension_limit == 25


def test_dimensions_accept_lifted_columns_and_property_keys() -> None:
    raw = {"dimensions": ["country", "properties.app_version", "campaign"], "dimension_limit": 3}
    parsed = parse_settings(raw, home=Path("."))
    assert parsed.dimensions == ("country", "properties.app_version", "campaign")
    assert parsed.dimension_limit == 3


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"dimensions": ["platform", "browser"]}, "unknown dimension 'browser'"),
        ({"dimensions": ["properties."]}, "unknown dimension 'properties.'"),
        ({"dimensions": "platform"}, "dimensions must be a list"),
        ({"dimensions": ["country", "platform", "country"]}, "lists 'country' twice"),
        ({"dimensions": [f"properties.k{n}" for n in range(9)]}, "at most 8"),
        ({"dimension_limit": 0}, "dimension_limit must be a positive whole number"),
        ({"dimension_limit": "ten"}, "dimension_limit must be a positive whole number"),
        ({"dimension_limit": True}, "dimension_limit must be a positive whole number"),
    ],
)
def test_bad_dimension_settings_are_one_sentence(raw: dict, says: str) -> None:
    with pytest.raises(EventpulseError) as error:
        parse_settings(raw, home=Path("."))
    message = str(error.value)
    assert says in message
    assert message.count(". ") == 0 and message.endswith(".")


# --- hand-made events -------------------------------------------------------------------------


def dim_ev(event_id: str, user: str, event: str, ts: str, **fields: Any) -> dict[str, Any]:
    row = ev(event_id, user, event, ts, **fields)
    row.setdefault("country", None)
    row.setdefault("properties", {})
    return row


# Limit 2 on purpose. country: NL (3 users), DE (2), US (1), FR (1): kept NL, DE; US and FR are
# 'other'. app_version: "3" and 3 are one value (3 users), 2.1 (1), "beta" (1): a tie for the
# second place between "2.1" and "beta", broken by value ("2.1" < "beta").
HAND_EVENTS = [
    # ann: two platforms and two countries on one day (active in both segments), a purchase
    # on the second platform; her first event has no country ('unknown' acquisition).
    dim_ev("a1", "ann", "page_view", "2026-03-02 09:00:00", properties={"app_version": 3}),
    dim_ev("a2", "ann", "page_view", "2026-03-02 09:05:00", country="NL"),
    dim_ev(
        "a3", "ann", "purchase", "2026-03-02 09:10:00", platform="ios", country="DE", revenue=5.0
    ),
    dim_ev("a4", "ann", "page_view", "2026-03-09 10:00:00", country="US", campaign="spring"),
    # ben: app_version as text "3", the same value as ann's number 3; an empty country.
    dim_ev(
        "b1", "ben", "page_view", "2026-03-02 11:00:00", country="", properties={"app_version": "3"}
    ),
    dim_ev("b2", "ben", "purchase", "2026-03-03 11:00:00", country="NL", revenue=7.5),
    # cat and dan: the countries that are folded into 'other' in one day: one 'other' user.
    dim_ev("c1", "cat", "page_view", "2026-03-03 08:00:00", country="US"),
    dim_ev("c2", "cat", "page_view", "2026-03-03 08:01:00", country="FR"),
    dim_ev("c3", "cat", "page_view", "2026-03-03 08:02:00", country="NL"),
    dim_ev(
        "d1", "dan", "signup", "2026-03-04 12:00:00", country="DE", properties={"app_version": 3}
    ),
    # eve: a decimal version and a version string, one user each.
    dim_ev("e1", "eve", "page_view", "2026-03-05 12:00:00", properties={"app_version": 2.1}),
    dim_ev(
        "e2",
        "fay",
        "page_view",
        "2026-03-05 13:00:00",
        platform=None,
        channel=None,
        properties={"app_version": "beta"},
    ),
]


def warehouse_with(tmp_path: Path, events: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    insert_events(conn, events)
    return conn


def build_segment_marts(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_daily_metrics(conn, settings)
    build_cohorts(conn, settings)


def test_kept_values_are_the_most_active_ties_by_value_unknown_apart(tmp_path: Path) -> None:
    conn = warehouse_with(tmp_path, HAND_EVENTS)
    try:
        build_segment_marts(conn, settings_with(FOUR, 2))
        kept = conn.execute(
            "select dimension, value, users, rank from dimension_values order by all"
        ).fetchall()
    finally:
        conn.close()
    assert kept == [
        ("campaign", "spring", 1, 1),
        ("country", "DE", 2, 2),
        ("country", "NL", 3, 1),
        ("platform", "ios", 1, 2),
        ("platform", "web", 5, 1),
        ("properties.app_version", "2.1", 1, 2),
        ("properties.app_version", "3", 3, 1),
    ]


def test_hand_made_segments_match_the_reference(tmp_path: Path) -> None:
    settings = settings_with(FOUR, 2)
    conn = warehouse_with(tmp_path, HAND_EVENTS)
    try:
        build_segment_marts(conn, settings)
        metrics, cohorts = fetch(conn, "daily_metrics"), fetch(conn, "cohorts")
        assert cohort_size_mismatches(conn, FOUR) == []
    finally:
        conn.close()
    expected = reference_dimensions.daily_metrics(HAND_EVENTS, "purchase", GAP, FOUR, 2)
    assert_same_rows("daily_metrics", metrics, expected)
    assert_same_rows("cohorts", cohorts, reference_dimensions.cohorts(HAND_EVENTS, FOUR, 2))
    monday = {
        (r["dimension"], r["segment"]): r
        for r in metrics
        if r["metric_date"] == dt.date(2026, 3, 2)
    }
    # ann is active on web and ios, in NL, DE and 'unknown' (a1 has no country) on one day;
    # ben's empty country is 'unknown' too.
    assert monday[("platform", "web")]["active_users"] == 2
    assert monday[("platform", "ios")]["active_users"] == 1
    assert monday[("platform", "ios")]["purchasers"] == 1
    assert monday[("country", "unknown")]["active_users"] == 2
    assert monday[("country", "NL")]["active_users"] == 1
    # 3 (a number) and "3" (text) are one segment.
    assert monday[("properties.app_version", "3")]["active_users"] == 2
    tuesday = {
        (r["dimension"], r["segment"]): r
        for r in metrics
        if r["metric_date"] == dt.date(2026, 3, 3)
    }
    # cat's US and FR are both 'other': one user there.
    assert tuesday[("country", "other")]["active_users"] == 1
    friday = {
        (r["dimension"], r["segment"]): r
        for r in metrics
        if r["metric_date"] == dt.date(2026, 3, 5)
    }
    assert friday[("properties.app_version", "other")]["active_users"] == 1  # "beta"
    assert friday[("platform", "unknown")]["new_users"] == 1  # fay, no platform
    assert ("channel", "organic") not in friday  # channel is not configured


def test_case_variants_of_a_lifted_value_are_one_segment_spelt_as_most_users_sent_it(
    tmp_path: Path,
) -> None:
    """ "iOS" (2 users) and "ios" (1) are the segment "iOS" with 3 users in every mart; a
    property's "Pro" and "pro" stay two values (a property's case may mean something)."""
    events = [
        dim_ev("1", "u1", "page_view", "2026-03-02 09:00:00", platform="iOS"),
        dim_ev("2", "u2", "page_view", "2026-03-02 10:00:00", platform="iOS"),
        dim_ev("3", "u3", "page_view", "2026-03-02 11:00:00", platform="ios"),
        dim_ev("4", "u4", "page_view", "2026-03-02 12:00:00", platform="web"),
        dim_ev("5", "u1", "page_view", "2026-03-02 13:00:00", properties={"plan": "Pro"}),
        dim_ev("6", "u2", "page_view", "2026-03-02 14:00:00", properties={"plan": "pro"}),
    ]
    dimensions = ("platform", "properties.plan")
    settings = settings_with(dimensions, 25)
    conn = warehouse_with(tmp_path, events)
    try:
        build_segment_marts(conn, settings)
        build_funnels(conn, settings)
        metrics, cohorts = fetch(conn, "daily_metrics"), fetch(conn, "cohorts")
        kept = conn.execute(
            "select dimension, value, users from dimension_values order by all"
        ).fetchall()
        entered = conn.execute(
            "select segment, users from funnel_steps where dimension = 'platform' "
            "and step_index = 1 and users > 0 order by all"
        ).fetchall()
    finally:
        conn.close()
    assert kept == [
        ("platform", "iOS", 3),
        ("platform", "web", 3),  # u4, and u1 and u2 later that day (the default platform)
        ("properties.plan", "Pro", 1),
        ("properties.plan", "pro", 1),
    ]
    platforms = {r["segment"]: r["active_users"] for r in metrics if r["dimension"] == "platform"}
    assert platforms == {"iOS": 3, "web": 3}
    assert entered == [("iOS", 3), ("web", 1)]
    expected = reference_dimensions.daily_metrics(events, "purchase", GAP, dimensions, 25)
    assert_same_rows("daily_metrics", metrics, expected)
    assert_same_rows("cohorts", cohorts, reference_dimensions.cohorts(events, dimensions, 25))


def test_a_user_who_sent_two_spellings_of_a_value_is_counted_once_for_it(tmp_path: Path) -> None:
    """u1 sent "iOS" and "ios": the value has 2 users (u1, u2), not 3, so with a limit of 1 the
    3 users of "web" keep it and the iOS users are 'other'; "ios" (2 users) is the spelling."""
    events = [
        dim_ev("1", "u1", "page_view", "2026-03-02 09:00:00", platform="iOS"),
        dim_ev("2", "u1", "page_view", "2026-03-03 09:00:00", platform="ios"),
        dim_ev("3", "u2", "page_view", "2026-03-03 10:00:00", platform="ios"),
        dim_ev("4", "u3", "page_view", "2026-03-02 11:00:00", platform="web"),
        dim_ev("5", "u4", "page_view", "2026-03-02 12:00:00", platform="web"),
        dim_ev("6", "u5", "page_view", "2026-03-03 12:00:00", platform="web"),
    ]
    dimensions = ("platform",)
    conn = warehouse_with(tmp_path, events)
    try:
        build_segment_marts(conn, settings_with(dimensions, 1))
        metrics = fetch(conn, "daily_metrics")
        kept_one = conn.execute(
            "select value, users, values_seen from dimension_values order by all"
        ).fetchall()
        build_segment_marts(conn, settings_with(dimensions, 2))
        kept_two = conn.execute(
            "select value, users, values_seen from dimension_values order by rank"
        ).fetchall()
    finally:
        conn.close()
    assert kept_one == [("web", 3, 2)]
    assert kept_two == [("web", 3, 2), ("ios", 2, 2)]
    expected = reference_dimensions.daily_metrics(events, "purchase", GAP, dimensions, 1)
    assert_same_rows("daily_metrics", metrics, expected)


def test_funnel_segments_are_the_entry_events_in_any_dimension(tmp_path: Path) -> None:
    events = [
        reference_funnels.Event(
            "a1",
            "ann",
            "page_view",
            at("2026-03-02 09:00"),
            country="NL",
            properties={"app_version": 3},
        ),
        reference_funnels.Event("a2", "ann", "purchase", at("2026-03-02 09:30"), country="DE"),
        # bob enters twice at the same instant: the smaller event id (b1) is the entry event.
        reference_funnels.Event(
            "b2",
            "bob",
            "page_view",
            at("2026-03-03 10:00"),
            country="FR",
            properties={"app_version": "3"},
        ),
        reference_funnels.Event(
            "b1",
            "bob",
            "page_view",
            at("2026-03-03 10:00"),
            country="US",
            properties={"app_version": "2.0"},
        ),
        reference_funnels.Event("c1", "cat", "page_view", at("2026-03-04 10:00"), country=None),
        reference_funnels.Event("c2", "cat", "purchase", at("2026-03-04 10:05"), country="NL"),
        # dan never enters the funnel: his country is an empty segment (zeros).
        reference_funnels.Event("d1", "dan", "signup", at("2026-03-04 11:00"), country="SE"),
    ]
    funnel = Funnel("buy", ("page_view", "purchase"))
    dims = ("country", "properties.app_version", "platform")
    settings = settings_with(dims, 5, funnels=(funnel,))
    conn = warehouse_with(tmp_path, [event_row(e) for e in events])
    try:
        build_funnels(conn, settings)
        rows = fetch(conn, "funnel_steps")
    finally:
        conn.close()
    expected = reference_dimensions.funnel_steps(events, funnel, dims, 5)
    assert {(r["dimension"], r["segment"]) for r in rows} == {
        (r["dimension"], r["segment"]) for r in expected
    }
    wanted = {(r["dimension"], r["segment"], r["step_index"]): r for r in expected}
    for row in rows:
        key = (row["dimension"], row["segment"], row["step_index"])
        assert row["users"] == wanted[key]["users"], key
    by_key = {(r["dimension"], r["segment"], r["step_index"]): r["users"] for r in rows}
    assert by_key[("country", "US", 1)] == 1  # bob's entry b1, not b2 (FR)
    assert by_key[("country", "SE", 1)] == 0  # seen, never entered


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --- seeded random data ---------------------------------------------------------------------


def random_events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    start = dt.datetime(2026, 1, 26)
    rows = []
    for i in range(n):
        version = rng.choice([None, 1, "1", 2, "2.0", "beta", "Beta", ""])
        rows.append(
            dim_ev(
                f"e{i:04d}",
                f"u{rng.randrange(12)}",
                rng.choice(["page_view", "page_view", "signup", "purchase"]),
                str(start + dt.timedelta(minutes=rng.randrange(60 * 24 * 20))),
                # Case variants of a lifted column's value are one segment; of a property not.
                platform=rng.choice(["web", "ios", "iOS", "android", None]),
                channel=rng.choice(["ads", "organic", "email", "Email", None]),
                campaign=rng.choice([None, "a", "b", "c", "d"]),
                country=rng.choice(["NL", "DE", "US", "FR", "nl", "", None]),
                properties={} if version is None else {"app_version": version},
                revenue=rng.choice([None, None, 2.5, 10.0]),
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("dimensions", "limit"),
    [
        (FOUR, 2),
        (("channel", "properties.app_version"), 1),
        (("country", "campaign", "platform", "channel", "properties.app_version"), 3),
    ],
)
def test_random_events_match_the_reference(
    tmp_path: Path, seed: int, dimensions: tuple[str, ...], limit: int
) -> None:
    events = random_events(random.Random(seed), 160)
    conn = warehouse_with(tmp_path, events)
    try:
        build_segment_marts(conn, settings_with(dimensions, limit))
        metrics, cohorts = fetch(conn, "daily_metrics"), fetch(conn, "cohorts")
    finally:
        conn.close()
    expected = reference_dimensions.daily_metrics(events, "purchase", GAP, dimensions, limit)
    assert_same_rows("daily_metrics", metrics, expected)
    assert_same_rows("cohorts", cohorts, reference_dimensions.cohorts(events, dimensions, limit))


# Sessions with several events at their first instant: the session's (and a new user's)
# segment is that of the first by event id, whatever the order the events were stored in.
TIED_STARTS = [
    dim_ev(
        "t2",
        "tia",
        "page_view",
        "2026-03-02 09:00:00",
        country="DE",
        properties={"app_version": "2"},
    ),
    dim_ev("t3", "tia", "purchase", "2026-03-02 09:00:00", country="US", revenue=3.0),
    dim_ev(
        "t1", "tia", "page_view", "2026-03-02 09:00:00", country="NL", properties={"app_version": 1}
    ),
    dim_ev("t9", "tia", "page_view", "2026-03-02 12:00:00", country="FR"),
    dim_ev(
        "u2", "ulf", "page_view", "2026-03-02 10:00:00", country="DE", properties={"app_version": 1}
    ),
    dim_ev("u1", "ulf", "page_view", "2026-03-02 10:00:00"),
]


def test_a_session_with_several_events_at_its_start_takes_the_first_by_id(
    tmp_path: Path,
) -> None:
    dimensions = ("country", "properties.app_version")
    conn = warehouse_with(tmp_path, TIED_STARTS)
    try:
        build_segment_marts(conn, settings_with(dimensions, 5))
        metrics = fetch(conn, "daily_metrics")
    finally:
        conn.close()
    expected = reference_dimensions.daily_metrics(TIED_STARTS, "purchase", GAP, dimensions, 5)
    assert_same_rows("daily_metrics", metrics, expected)
    starts = {
        (r["dimension"], r["segment"]): (r["sessions"], r["new_users"])
        for r in metrics
        if r["sessions"] and r["dimension"] != "all"
    }
    # tia: t1 (NL, 1) opens her first session, t9 (FR, no version) her second; ulf: u1 (none).
    assert starts == {
        ("country", "NL"): (1, 1),
        ("country", "FR"): (1, 0),
        ("country", "unknown"): (1, 1),
        ("properties.app_version", "1"): (1, 1),
        ("properties.app_version", "unknown"): (2, 1),
    }


def test_segment_rows_add_up_to_all_in_every_dimension(tmp_path: Path) -> None:
    events = random_events(random.Random(9), 200)
    conn = warehouse_with(tmp_path, events)
    try:
        build_segment_marts(conn, settings_with(FOUR, 2))
        mismatched = conn.execute(
            """
            with sums as (
                select metric_date, dimension, sum(events) as events, sum(new_users) as new_users,
                    sum(sessions) as sessions, sum(revenue) as revenue
                from daily_metrics where dimension <> 'all' group by all
            )
            select s.*
            from sums as s
            join daily_metrics as a on a.metric_date = s.metric_date and a.dimension = 'all'
            where s.events <> a.events or s.new_users <> a.new_users
                or s.sessions <> a.sessions or abs(s.revenue - a.revenue) > 1e-9
            """
        ).fetchall()
    finally:
        conn.close()
    assert mismatched == []


@pytest.mark.parametrize(
    ("dimensions", "limit"),
    [
        (("country", "properties.plan", "platform"), 100),
        (("country", "properties.plan", "platform"), 40),
        # One dimension in two words: each row gets only the words of its own segments.
        (("properties.plan",), 100),
    ],
)
def test_more_segments_than_64_in_all_match_the_reference(
    tmp_path: Path, dimensions: tuple[str, ...], limit: int
) -> None:
    """daily_metrics counts each user once per segment from the set of segments the user was
    active in that day, 64 segments a word: with 70 countries and 70 plans (more than 64
    segments, so a set spans words) and users in many values a day, every row is the
    reference's. Values spelt "other" and "unknown" are the segments of those names, one with
    the folded values and the missing ones."""
    rng = random.Random(5)
    countries = [f"C{i:02d}" for i in range(70)] + ["other", None]
    plans = [f"p{i:02d}" for i in range(70)] + ["unknown", 7, "7", None]
    start = dt.datetime(2026, 2, 2)
    events = []
    for i in range(900):
        plan = rng.choice(plans)
        events.append(
            dim_ev(
                f"m{i:04d}",
                f"u{rng.randrange(25)}",
                rng.choice(["page_view", "page_view", "signup", "purchase"]),
                str(start + dt.timedelta(minutes=rng.randrange(60 * 24 * 6))),
                platform=rng.choice(["web", "ios", None]),
                country=rng.choice(countries),
                properties={} if plan is None else {"plan": plan},
                revenue=rng.choice([None, 4.0]),
            )
        )
    conn = warehouse_with(tmp_path, events)
    try:
        build_segment_marts(conn, settings_with(dimensions, limit))
        metrics = fetch(conn, "daily_metrics")
    finally:
        conn.close()
    expected = reference_dimensions.daily_metrics(events, "purchase", GAP, dimensions, limit)
    assert_same_rows("daily_metrics", metrics, expected)
    assert len({(r["dimension"], r["segment"]) for r in metrics}) > 64
