"""Funnel steps with `where` and funnel exclusions (CONTRACT §3 Funnel semantics): every row of
`funnel_steps` and `funnel_daily` equals the pure-Python reference (`reference_funnels.py`) on
hand-made edge cases and on hypothesis-generated events, in every order mode, through the chain
path (ordered, every step a different event), the general path (ordered with an event in two
steps, strict) and the unordered path; the settings refuse malformed shapes in one sentence."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import reference_funnels as ref
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_funnels import (
    KEYS,
    assert_matches_reference,
    assert_same_rows,
    at,
    build,
    counted,
    ev,
    fetch,
    load,
    users_by_step,
)

from assets.marts.funnels import build_funnels, is_chainable
from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import Exclusion, Funnel, Settings, parse_settings

HOUR = 3600

CONFIG = """
funnels:
  - name: pricing                 # general path: page_view twice, the second filtered
    steps:
      - page_view
      - {event: page_view, where: {path: /pricing}}
      - purchase
    window_seconds: 3600
  - name: plans                   # chain path: a lifted column, a list, a number
    steps:
      - {event: visit, where: {platform: [ios, android]}}
      - {event: signup, where: {plan_id: 3, plan: [pro, team]}}
      - purchase
    window_seconds: 3600
    exclusions:
      - {event: cancel, from_step: 2, to_step: 3}
  - name: no_cancel               # chain path, exclusion from the entry
    steps: [visit, signup, purchase]
    window_seconds: 3600
    exclusions:
      - {event: cancel, from_step: 1, to_step: 2}
  - name: again                   # general path with an exclusion
    steps: [visit, visit, purchase]
    window_seconds: 3600
    exclusions:
      - {event: cancel}
  - name: strict_pages            # strict, filtered, excluded
    steps:
      - {event: page_view, where: {path: /home}}
      - {event: page_view, where: {path: /pricing}}
    window_seconds: 3600
    order: strict
    exclusions:
      - {event: cancel, from_step: 1, to_step: 2}
  - name: any_page                # unordered with exclusive filters on one event
    steps:
      - {event: page_view, where: {path: /home}}
      - {event: page_view, where: {path: /pricing}}
      - signup
    window_seconds: 3600
    order: unordered
"""
FUNNELS = parse_settings(yaml.safe_load(CONFIG), home=Path(".")).funnels
HOME = {"path": "/home"}
PRICING = {"path": "/pricing"}

EDGE_EVENTS = [
    # pricing: the entry is itself a /pricing view: step 2 needs another one.
    ev("a1", "self", "page_view", 0, properties=PRICING),
    ev("a2", "self", "purchase", 10),
    # pricing: two views at one instant; the /home one enters and the /pricing one is step 2.
    ev("b2", "pair", "page_view", 0, properties=HOME, platform="ios"),
    ev("b1", "pair", "page_view", 0, properties=PRICING, platform="android"),
    ev("b3", "pair", "purchase", 5),
    # plans: plan_id 3 as a number and as a string both match; 3.5 and a missing key do not;
    # the platform is the lifted column.
    ev("n1", "number", "visit", 0, platform="ios"),
    ev("n2", "number", "signup", 10, properties={"plan_id": 3, "plan": "pro"}),
    ev("n3", "number", "purchase", 20),
    ev("s1", "string", "visit", 0, platform="android"),
    ev("s2", "string", "signup", 10, properties={"plan_id": "3", "plan": "team"}),
    ev("s3", "string", "purchase", 20),
    ev("f1", "fraction", "visit", 0, platform="ios"),
    ev("f2", "fraction", "signup", 10, properties={"plan_id": 3.5, "plan": "pro"}),
    ev("w1", "web", "visit", 0, platform="web"),
    ev("w2", "web", "signup", 10, properties={"plan_id": 3, "plan": "pro"}),
    # Exclusion events at the same instant as the steps around them are not between.
    ev("i1", "instant", "visit", 0, platform="ios"),
    ev("i2", "instant", "signup", 10, properties={"plan_id": 3, "plan": "pro"}),
    ev("i3", "instant", "cancel", 10),
    ev("i4", "instant", "cancel", 20),
    ev("i5", "instant", "purchase", 20),
    # A cancel strictly between signup and purchase: the attempt is not counted at all, and
    # the user's later attempt (which stops at step 2) is the counted one.
    ev("x1", "excluded", "visit", 0, platform="ios"),
    ev("x2", "excluded", "signup", 10, properties={"plan_id": 3, "plan": "pro"}),
    ev("x3", "excluded", "cancel", 15),
    ev("x4", "excluded", "purchase", 20),
    ev("x5", "excluded", "visit", 2 * HOUR, platform="android"),
    ev("x6", "excluded", "signup", 2 * HOUR + 10, properties={"plan_id": 3, "plan": "pro"}),
    # Every attempt excluded: the user is in no step of no_cancel.
    ev("g1", "gone", "visit", 0),
    ev("g2", "gone", "cancel", 5),
    ev("g3", "gone", "signup", 10),
    # Several attempts: the first visit's is excluded (cancel after it, before signup), the
    # second visit (after the cancel) reaches the same signup and is counted.
    ev("m1", "many", "visit", 0, platform="web"),
    ev("m2", "many", "cancel", 5),
    ev("m3", "many", "visit", 6, platform="ios"),
    ev("m4", "many", "signup", 10),
    ev("m5", "many", "purchase", 20),
    # again: visit, visit, purchase with a cancel anywhere between the first and the last.
    ev("r1", "repeat", "visit", 0),
    ev("r2", "repeat", "visit", 10),
    ev("r3", "repeat", "cancel", 15),
    ev("r4", "repeat", "purchase", 20),
    ev("r5", "repeat", "visit", 30),
    ev("r6", "repeat", "visit", 40),
    # strict_pages: a /home view then /pricing; in between only a cancel at the same instant.
    ev("h1", "strict", "page_view", 0, properties=HOME),
    ev("h2", "strict", "page_view", 10, properties=PRICING),
    ev("h3", "strict", "cancel", 10),
    # any_page: /pricing, then signup, then /home, in that order (unordered).
    ev("u1", "unordered", "page_view", 0, properties=PRICING, channel="ads"),
    ev("u2", "unordered", "signup", 10),
    ev("u3", "unordered", "page_view", 20, properties={"path": "/home", "x": True}),
]


@pytest.fixture
def edge_conn(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    load(conn, EDGE_EVENTS)
    build(conn, FUNNELS)
    return conn


def test_the_config_takes_every_path() -> None:
    chained = {f.name for f in FUNNELS if is_chainable(f)}
    assert chained == {"plans", "no_cancel"}


@pytest.mark.parametrize("table", list(KEYS))
def test_every_row_matches_the_reference_on_edge_cases(edge_conn, table: str) -> None:
    expected = ref.funnel_tables(EDGE_EVENTS, FUNNELS)[table]
    assert_same_rows(table, fetch(edge_conn, table), expected)


def test_steps_are_named_with_their_filters(edge_conn) -> None:
    steps = edge_conn.execute(
        "select funnel, step from funnel_steps where dimension = 'all' order by funnel, step_index"
    ).fetchall()
    assert ("pricing", "page_view[path=/pricing]") in steps
    assert ("plans", "visit[platform=ios|android]") in steps
    assert ("plans", "signup[plan_id=3,plan=pro|team]") in steps


def test_one_event_matching_two_steps_fills_only_one(edge_conn) -> None:
    assert counted(edge_conn, "pricing", "self")[0] == 1
    # The /home view enters (its segment), the simultaneous /pricing view is step 2.
    assert counted(edge_conn, "pricing", "pair")[::3] == (3, "ios")


def test_a_number_and_the_same_number_as_text_both_match(edge_conn) -> None:
    assert counted(edge_conn, "plans", "number")[0] == 3
    assert counted(edge_conn, "plans", "string")[0] == 3
    assert counted(edge_conn, "plans", "fraction")[0] == 1
    users = edge_conn.execute("select user_id from funnel_attempts where funnel = 'plans'")
    assert "web" not in {u for (u,) in users.fetchall()}


def test_an_exclusion_at_the_same_instant_as_a_step_is_not_between(edge_conn) -> None:
    assert counted(edge_conn, "plans", "instant")[0] == 3
    assert counted(edge_conn, "strict_pages", "strict")[0] == 2


def test_an_excluded_attempt_is_not_counted_and_the_others_still_are(edge_conn) -> None:
    furthest, entry_ts, _, platform, _ = counted(edge_conn, "plans", "excluded")
    assert (furthest, platform) == (2, "android")
    # The second visit, after the cancel, is counted; the first one's attempt is excluded.
    assert counted(edge_conn, "no_cancel", "many")[::3] == (3, "ios")
    gone = edge_conn.execute(
        "select count(*) from funnel_attempts where funnel = 'no_cancel' and user_id = 'gone'"
    )
    assert gone.fetchall() == [(0,)]


def test_an_exclusion_in_the_general_path_drops_the_whole_attempt(edge_conn) -> None:
    # visit(0), visit(10), cancel, purchase(20): excluded. The attempt from visit(10) takes
    # visit(30) as step 2 and finds no purchase after it: it never matched to_step, so the
    # cancel does not affect it, and it is the earliest left reaching step 2.
    assert counted(edge_conn, "again", "repeat")[:2] == (2, at(10))


def test_unordered_steps_with_exclusive_filters_count_in_any_order(edge_conn) -> None:
    assert counted(edge_conn, "any_page", "unordered")[0] == 3
    assert users_by_step(edge_conn, "any_page", "channel", "ads") == [(1,), (1,), (1,)]


def test_filter_values_are_data_never_sql_text(conn) -> None:
    hostile = "x') or true or ('"
    events = [
        ev("q1", "quote", "page_view", 0, properties={"path": hostile}),
        ev("q2", "quote", "page_view", 10, properties={"path": "/other"}),
        ev("q3", "quote", "buy", 20),
    ]
    funnel = Funnel(
        "hostile",
        ("page_view", "buy"),
        where=((("path", (hostile,)),), ()),
        exclusions=(Exclusion("x' or 1=1 --", 1, 2),),
    )
    load(conn, events)
    build(conn, (funnel,))
    assert users_by_step(conn, "hostile", "all", "all") == [(1,), (1,)]
    assert_matches_reference(conn, events, (funnel,))


# --- hypothesis -------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
PROPERTIES = ({}, {"path": "/a"}, {"path": "/b"}, {"n": 3}, {"n": "3"}, {"n": 3.5})
FILTERS = (
    (),
    (("path", ("/a",)),),
    (("path", ("/a", "/b")),),
    (("n", ("3",)),),
    (("platform", ("ios",)),),
    (("path", ("/b",)), ("n", ("3",))),
)


@st.composite
def event_sets(draw: st.DrawFn) -> list[ref.Event]:
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("u1", "u2", "u3")),
                st.sampled_from((*NAMES, "x")),
                st.integers(0, 12),
                st.sampled_from(("web", "ios", None)),
                st.sampled_from(PROPERTIES),
            ),
            max_size=24,
        )
    )
    ids = draw(st.permutations([f"e{n:02d}" for n in range(len(raw))]))
    return [
        ev(event_id, user, name, 30 * slot, platform=platform, properties=properties)
        for event_id, (user, name, slot, platform, properties) in zip(ids, raw, strict=True)
    ]


@st.composite
def funnels(draw: st.DrawFn, order: str, distinct: bool = False) -> Funnel:
    if distinct:
        names = draw(st.permutations(NAMES))[: draw(st.integers(2, 3))]
    else:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=4))
    if order == "unordered":
        # One filter per event name: unordered steps of one event share their `where`.
        by_name = {name: draw(st.sampled_from(FILTERS)) for name in NAMES}
        where = tuple(by_name[name] for name in names)
    else:
        where = tuple(draw(st.sampled_from(FILTERS)) for _ in names)
    exclusions = ()
    if order != "unordered":
        exclusions = tuple(
            Exclusion(
                event, *sorted(draw(st.sets(st.integers(1, len(names)), min_size=2, max_size=2)))
            )
            for event in draw(st.lists(st.sampled_from(("x", *NAMES)), max_size=2))
        )
    return Funnel(
        name=f"{order}_{'chain' if distinct else 'general'}",
        steps=tuple(names),
        window_seconds=draw(st.sampled_from((30, 60, 90, 150))),
        order=order,
        where=where,
        exclusions=exclusions,
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=event_sets(),
    chain=funnels("ordered", distinct=True),
    general=funnels("ordered"),
    strict=funnels("strict"),
    unordered=funnels("unordered"),
)
def test_random_filtered_funnels_match_the_reference_in_every_mode(
    events: list[ref.Event], chain: Funnel, general: Funnel, strict: Funnel, unordered: Funnel
) -> None:
    conn = warehouse.connect(Path(":memory:"))
    try:
        load(conn, events)
        chosen = (chain, general, strict, unordered)
        build_funnels(conn, Settings(home=Path("."), funnels=chosen))
        assert_matches_reference(conn, events, chosen)
    finally:
        conn.close()


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "extra", "message"),
    [
        ("[a, {event: b, where: path}]", "", "step 2 where must be a mapping"),
        ("[a, {event: b, where: {}}]", "", "step 2 where must be a mapping"),
        ("[a, {event: b, where: {path: {x: 1}}}]", "", "where.path must be a value"),
        ("[a, {event: b, where: {path: []}}]", "", "where.path must be a value"),
        ("[a, {event: b, where: {path: null}}]", "", "where.path must be a value"),
        ("[a, {where: {path: /x}}]", "", "step 2 event must be a non-empty event name"),
        ("[a, {event: b, wher: {path: /x}}]", "", "unknown key 'wher'"),
        ("[a, 3]", "", "step 2 must be an event name"),
        ("[a, b]", "exclusions: [{event: x, from_step: 1, to_step: 3}]", "step 3 is not a step"),
        ("[a, b]", "exclusions: [{event: x, from_step: 0}]", "step 0 is not a step"),
        ("[a, b, c]", "exclusions: [{event: x, from_step: 2, to_step: 2}]", "must come before"),
        ("[a, b]", "exclusions: [{from_step: 1}]", "exclusions[1].event must be"),
        ("[a, b]", "exclusions: [{event: x, after: 1}]", "unknown key 'after'"),
        ("[a, b]", "exclusions: {event: x}", "exclusions must be a list"),
        ("[a, b]", "order: unordered\n    exclusions: [{event: x}]", "not allowed in an unordered"),
        (
            "[{event: a, where: {p: [1, 2]}}, {event: a, where: {p: 2}}]",
            "order: unordered",
            "which one event can both match",
        ),
    ],
)
def test_a_malformed_step_or_exclusion_is_one_sentence(steps: str, extra: str, message: str):
    text = f"funnels:\n  - name: f\n    steps: {steps}\n    {extra}\n"
    with pytest.raises(EventpulseError) as error:
        parse_settings(yaml.safe_load(text), home=Path("."))
    assert message in str(error.value)
    assert "\n" not in str(error.value).strip()


def test_a_where_key_of_any_name_and_values_of_any_scalar_type_are_read_as_text() -> None:
    text = """
funnels:
  - name: f
    steps:
      - {event: a, where: {"$os": iOS, "a/b~c": [1, 2.5, true], day: 2026-01-02}}
      - b
    order: unordered
  - name: g
    steps: [{event: a, where: {p: 1}}, {event: a, where: {p: 2}}]
    order: unordered
"""
    f, g = parse_settings(yaml.safe_load(text), home=Path(".")).funnels
    assert f.where[0] == (
        ("$os", ("iOS",)),
        ("a/b~c", ("1", "2.5", "true")),
        ("day", ("2026-01-02",)),
    )
    assert f.step_names == ("a[$os=iOS,a/b~c=1|2.5|true,day=2026-01-02]", "b")
    assert g.step_names == ("a[p=1]", "a[p=2]")
