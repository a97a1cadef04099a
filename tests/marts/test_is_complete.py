"""`is_complete` on retention, cohorts and funnel_daily (CONTRACT §3) at its edges: a period
ending exactly on the last event date, month ends, and funnel windows that close exactly at the
end of the last event date, each against the pure-Python references."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import reference
import reference_funnels as ref
from conftest import insert_events

from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from pipelines.settings import Funnel, Settings

SETTINGS = Settings(home=Path("."))


def _event(user: str, ts: str) -> dict:
    return {"user_id": user, "event": "page_view", "ts": dt.datetime.fromisoformat(ts)}


def _build_retention_and_cohorts(conn: duckdb.DuckDBPyConnection, events: list[dict]) -> None:
    insert_events(conn, events)
    build_sessions(conn, SETTINGS)
    build_users(conn, SETTINGS)
    build_retention(conn)
    build_cohorts(conn)


def _complete(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[tuple, bool]:
    return {tuple(row[:-1]): row[-1] for row in conn.execute(sql).fetchall()}


# 2024-03-31 is a Sunday and a month end: the week of 03-25 and the month of March both end on it.
@pytest.mark.parametrize("last_day", ["2024-03-30", "2024-03-31", "2024-04-01"])
def test_a_period_ending_on_the_last_event_date_is_complete_and_one_day_short_is_not(
    conn: duckdb.DuckDBPyConnection, last_day: str
) -> None:
    events = [
        _event("ann", "2024-02-29 23:59:59"),  # leap day, a Thursday
        _event("ann", "2024-03-25 00:00:00"),
        _event("ben", "2024-03-29 23:59:59"),
        _event("cat", f"{last_day} 12:00:00"),
    ]
    _build_retention_and_cohorts(conn, events)
    last = dt.date.fromisoformat(last_day)
    retention = _complete(
        conn,
        "select granularity, mode, cohort_start, period, is_complete from retention",
    )
    expected = {
        (r["granularity"], r["mode"], r["cohort_start"], r["period"]): r["is_complete"]
        for r in reference.retention(_as_reference(events))
    }
    assert retention == expected
    cohorts = _complete(
        conn,
        "select cohort_granularity, cohort_start, dimension, segment, period_index, is_complete "
        "from cohorts",
    )
    assert cohorts == {
        (
            r["cohort_granularity"],
            r["cohort_start"],
            r["dimension"],
            r["segment"],
            r["period_index"],
        ): (r["is_complete"])
        for r in reference.cohorts(_as_reference(events))
    }
    # Stated directly, without the reference: March (month period 1 of the February cohort) and
    # the week of 03-25 (week 4 of the 02-26 cohort) are complete once 03-31 has data.
    month = retention[("month", "exact", dt.date(2024, 2, 1), 1)]
    week = retention[("week", "exact", dt.date(2024, 2, 26), 4)]
    assert month == week == (last >= dt.date(2024, 3, 31))
    # A day period always ends on its own day: the last event date's own day is complete.
    assert retention[("day", "exact", dt.date(2024, 3, 29), (last - dt.date(2024, 3, 29)).days)]


def _as_reference(events: list[dict]) -> list[dict]:
    """The events as tests/reference.py reads them (the fields insert_events defaults)."""
    return [
        {
            "event_id": None,
            "platform": "web",
            "channel": "organic",
            "campaign": None,
            "revenue": None,
            **e,
        }
        for e in events
    ]


@pytest.mark.parametrize(
    ("window_seconds", "complete_entries"),
    [
        # 7 days: an attempt entering at the end of 03-01 has its window through the end of 03-08.
        (7 * 86400, {"2024-02-28", "2024-03-01"}),
        # One hour: every day before the last is complete; the last day's own entries are not.
        (3600, {"2024-02-28", "2024-03-01", "2024-03-02", "2024-03-07"}),
        # One second more than a day: the day before the last is not complete any more.
        (86401, {"2024-02-28", "2024-03-01", "2024-03-02"}),
    ],
)
def test_funnel_day_is_complete_once_its_whole_window_has_passed(
    conn: duckdb.DuckDBPyConnection, window_seconds: int, complete_entries: set[str]
) -> None:
    at = dt.datetime.fromisoformat
    events = [
        ref.Event("e1", "u1", "view", at("2024-02-28 00:00:00")),  # across a leap-year month end
        ref.Event("e2", "u1", "buy", at("2024-02-29 10:00:00")),
        ref.Event("e3", "u2", "view", at("2024-03-01 23:59:59")),
        ref.Event("e4", "u3", "view", at("2024-03-02 08:00:00")),
        ref.Event("e5", "u4", "view", at("2024-03-07 08:00:00")),
        ref.Event("e6", "u5", "view", at("2024-03-08 09:00:00")),  # the last event date
    ]
    insert_events(
        conn,
        [
            {"event_id": e.event_id, "user_id": e.user_id, "event": e.event, "ts": e.ts}
            for e in events
        ],
    )
    funnel = Funnel("f", ("view", "buy"), window_seconds=window_seconds)
    build_funnels(conn, Settings(home=Path("."), funnels=(funnel,)))
    got = _complete(conn, "select entry_date, step_index, is_complete from funnel_daily")
    expected = {
        (r["entry_date"], r["step_index"]): r["is_complete"]
        for r in ref.funnel_tables(events, (funnel,))["funnel_daily"]
    }
    assert got == expected
    assert {str(day) for (day, _), done in got.items() if done} == complete_entries
