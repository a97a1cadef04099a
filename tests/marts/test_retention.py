"""Retention definitions (CONTRACT §3 retention, `start_event` / `return_event`): every row of
`retention` against the pure-Python reference (tests/reference.py) for several definitions at
once, on hand-made edge cases, seeded random data and hypothesis event sets; `any` alone gives
the rows it always gave."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference
import yaml
from conftest import insert_events
from hypothesis import given, settings
from hypothesis import strategies as st
from test_marts import (
    CONVERSION,
    EDGE_EVENTS,
    EVENT,
    SETTINGS,
    assert_same_rows,
    build_marts,
    ev,
    fetch,
    random_events,
)

from assets.marts.retention import build_retention, definitions_without_rows, period_zero_failures
from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import RetentionDefinition, parse_settings

# Read the way eventpulse.yaml is: the default `any`, a start and a return event, a return event
# alone, the same event as start and return, and a start event that never occurs.
CONFIG = f"""
retention:
  - {{name: any}}
  - {{name: buyers, start_event: signup, return_event: {CONVERSION}}}
  - {{name: repeat_views, return_event: page_view}}
  - {{name: rebuy, start_event: {CONVERSION}, return_event: {CONVERSION}}}
  - {{name: ghost, start_event: teleport}}
"""
DEFINITIONS = parse_settings(yaml.safe_load(CONFIG), home=Path(".")).retention
WITH_DEFINITIONS = dataclasses.replace(SETTINGS, retention=DEFINITIONS)

# Signups and returns around the start: a conversion before the signup in the same day (not a
# return: it came before the start), one at the same instant (a return), one a week later.
STORY = [
    ev("s1", "sam", "page_view", "2024-03-04 08:00:00"),
    ev("s2", "sam", CONVERSION, "2024-03-05 09:00:00"),
    ev("s3", "sam", "signup", "2024-03-05 10:00:00"),
    ev("s4", "sam", "page_view", "2024-03-12 10:00:00"),
    ev("t1", "tia", "signup", "2024-03-05 12:00:00"),
    ev("t2", "tia", CONVERSION, "2024-03-05 12:00:00"),
    ev("t3", "tia", CONVERSION, "2024-03-13 12:00:00"),
    # A second signup does not move the start: the first one is the start.
    ev("t4", "tia", "signup", "2024-03-20 12:00:00"),
    ev("v1", "vic", "signup", "2024-03-06 12:00:00"),
    ev("v2", "vic", "page_view", "2024-03-26 12:00:00"),
]


def build(conn: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> None:
    insert_events(conn, events)
    build_marts(conn, WITH_DEFINITIONS)


def assert_retention_matches(conn: duckdb.DuckDBPyConnection, events: list[dict]) -> None:
    expected = reference.retention(events, DEFINITIONS)
    assert_same_rows("retention", fetch(conn, "retention"), expected)


def rates(conn: duckdb.DuckDBPyConnection, definition: str, granularity: str, mode: str) -> list:
    return conn.execute(
        """
        select cohort_start, cohort_users, period, retained_users from retention
        where definition = $d and granularity = $g and mode = $m order by cohort_start, period
        """,
        {"d": definition, "g": granularity, "m": mode},
    ).fetchall()


def test_every_row_matches_the_reference_for_every_definition(conn) -> None:
    build(conn, EDGE_EVENTS + STORY)
    assert_retention_matches(conn, EDGE_EVENTS + STORY)


def test_period_zero_counts_only_returns_at_or_after_the_start(conn) -> None:
    build(conn, STORY)
    # Week of 2024-03-04: sam (a conversion before his signup), tia (one at the same instant),
    # vic (none). Week 1: tia again.
    assert rates(conn, "buyers", "week", "exact")[:2] == [
        (dt.date(2024, 3, 4), 3, 0, 1),
        (dt.date(2024, 3, 4), 3, 1, 1),
    ]
    assert rates(conn, "buyers", "week", "on_or_after")[0] == (dt.date(2024, 3, 4), 3, 0, 1)


def test_the_same_event_as_start_and_return_counts_the_start_itself(conn) -> None:
    build(conn, STORY)
    rows = rates(conn, "rebuy", "day", "exact")
    assert [(start, users, retained) for start, users, period, retained in rows if period == 0] == [
        (dt.date(2024, 3, 5), 2, 2)
    ]


def test_a_start_event_that_never_occurs_gives_no_rows_and_is_named(conn) -> None:
    build(conn, STORY)
    assert rates(conn, "ghost", "week", "exact") == []
    assert definitions_without_rows(conn, DEFINITIONS) == ["ghost"]


def test_the_any_definition_alone_gives_the_rows_it_always_gave(conn) -> None:
    insert_events(conn, EDGE_EVENTS)
    build_marts(conn)
    default_rows = fetch(conn, "retention")
    build_retention(conn, DEFINITIONS)
    any_rows = [r for r in fetch(conn, "retention") if r["definition"] == "any"]
    assert default_rows == any_rows
    assert {r["definition"] for r in default_rows} == {"any"}


def test_period_zero_check_applies_to_definitions_returning_on_any_event(conn) -> None:
    build(conn, STORY)
    assert period_zero_failures(conn, DEFINITIONS) == []
    conn.execute("update retention set retention_rate = 0.5 where period = 0")
    failing = {row[:2] for row in period_zero_failures(conn, DEFINITIONS)}
    assert failing == {(g, m) for g in ("day", "month", "week") for m in ("exact", "on_or_after")}
    with_return = (RetentionDefinition("buyers", "signup", CONVERSION),)
    assert period_zero_failures(conn, with_return) == []


@pytest.mark.parametrize("seed", [3, 4])
def test_every_row_matches_the_reference_on_random_events(conn, seed: int) -> None:
    events = random_events(seed)
    build(conn, events)
    assert_retention_matches(conn, events)


@settings(max_examples=30, deadline=None)
@given(
    events=st.lists(
        st.tuples(EVENT, st.sampled_from(["view", "signup", CONVERSION, "page_view"])).map(
            lambda pair: dict(pair[0], event=pair[1])
        ),
        min_size=1,
        max_size=25,
        unique_by=lambda e: e["event_id"],
    )
)
def test_every_definition_matches_the_reference_on_any_events(events: list[dict]) -> None:
    conn = warehouse.connect(Path(":memory:"))
    try:
        build(conn, events)
        assert_retention_matches(conn, events)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention: []", "retention must be a non-empty list of definitions"),
        ("retention: [{start_event: signup}]", "retention[1].name must be a non-empty"),
        ("retention: [{name: a}, {name: a}]", "retention definition name 'a' is used twice"),
        ("retention: [{name: a, start: signup}]", "unknown key 'start' in retention[1]"),
        ("retention: [{name: a, return_event: ''}]", "retention[1].return_event must be"),
    ],
)
def test_a_malformed_retention_definition_is_one_sentence(text: str, message: str) -> None:
    with pytest.raises(EventpulseError) as error:
        parse_settings(yaml.safe_load(text), home=Path("."))
    assert message in str(error.value)
    assert "\n" not in str(error.value).strip()
