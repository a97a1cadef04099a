"""Vendor exports load as they are, and anonymous visitors become the person who signs up
(CONTRACT §2 "Vendor exports" and "Identity", §3 `identities`).

Fixtures (`tests/vendor_exports.py`) render one story in each vendor's raw export shape: visitors
who sign up, one whose sign-up arrives two days after their anonymous events, a device shared
by two users, a visitor who never signs up, re-sent copies. The warehouse is checked against the
fixture's truth and against the pure-Python reference (`tests/reference_identity.py`), loaded in
every order of its arrival days; then every mart is checked against the marts' reference fed with
the reference's persons.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference
import reference_funnels
import reference_identity
import vendor_exports

from assets.ingest.load import load_partition
from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from pipelines import warehouse
from pipelines.settings import Funnel, Settings

VENDORS = sorted(vendor_exports.ALL_EXPORTS)
EVENT_COLUMNS = (
    "user_id",
    "distinct_id",
    "event",
    "ts",
    "platform",
    "channel",
    "campaign",
    "country",
    "revenue",
    "arrival_date",
)


def write_days(landing: Path, records_by_day: dict[dt.date, list[dict]], name: str) -> None:
    for day, records in records_by_day.items():
        folder = landing / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def load_days(conn: duckdb.DuckDBPyConnection, landing: Path, days: list[dt.date]) -> None:
    for day in days:
        load_partition(conn, landing, day)


def stored_events(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    columns = ", ".join(EVENT_COLUMNS)
    rows = conn.execute(f"select event_id, {columns} from events").fetchall()
    return {row[0]: dict(zip(EVENT_COLUMNS, row[1:], strict=True)) for row in rows}


def stored_identities(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    rows = conn.execute("select anonymous_id, user_id, linked_at, arrival_date from identities")
    return {anon: (user, linked_at, day) for anon, user, linked_at, day in rows.fetchall()}


def persons_of(conn: duckdb.DuckDBPyConnection, sent_as: str) -> list[str]:
    """The persons of the events sent under one id."""
    rows = conn.execute(
        "select distinct user_id from events where distinct_id = $id order by 1", {"id": sent_as}
    ).fetchall()
    return [user for (user,) in rows]


def assert_events_equal(actual: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(actual) == sorted(expected)
    for event_id, row in expected.items():
        got = actual[event_id]
        for column in EVENT_COLUMNS:
            want = row[column]
            if isinstance(want, float):
                assert math.isclose(got[column], want), (event_id, column, got[column], want)
            else:
                assert got[column] == want, (event_id, column, got[column], want)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "events"


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_record_of_a_vendor_export_is_an_event_with_its_person(
    vendor: str, conn: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    fixture = vendor_exports.ALL_EXPORTS[vendor](seed=0, size=3)
    write_days(landing, fixture.records_by_day, vendor)
    load_days(conn, landing, sorted(fixture.records_by_day))
    assert_events_equal(stored_events(conn), fixture.expected)
    quarantined = conn.execute("select reason, count(*) from quarantine group by all").fetchall()
    assert quarantined == (
        [("duplicate_event_id", fixture.duplicates)] if fixture.duplicates else []
    )
    assert stored_identities(conn) == fixture.identities
    persons = conn.execute("select user_id, count(*) from events group by all").fetchall()
    assert dict(persons) == fixture.events_per_person


@pytest.mark.parametrize("vendor", VENDORS)
def test_identity_is_the_same_whatever_the_order_of_arrival_days(
    vendor: str, tmp_path: Path, landing: Path
) -> None:
    fixture = vendor_exports.ALL_EXPORTS[vendor](seed=7, size=4)
    write_days(landing, fixture.records_by_day, vendor)
    events, identities = reference_identity.events_and_identities(fixture.records_by_day)
    expected = {e["event_id"]: e for e in events}
    days = sorted(fixture.records_by_day)
    for n, order in enumerate(itertools.permutations(days)):
        conn = warehouse.connect(tmp_path / f"order-{n}.duckdb")
        try:
            # The last day again: re-loading a day never doubles anything.
            load_days(conn, landing, [*order, order[-1]])
            assert_events_equal(stored_events(conn), expected)
            assert stored_identities(conn) == identities, order
        finally:
            conn.close()


def test_a_link_that_arrives_later_re_attributes_earlier_days_and_a_reload_without_it_undoes_it(
    conn: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    fixture = vendor_exports.segment_export(seed=1, size=1)
    roles = fixture.roles
    write_days(landing, fixture.records_by_day, "segment")
    first, second, third = sorted(fixture.records_by_day)
    load_days(conn, landing, [first, second])
    assert persons_of(conn, roles["late_device"]) == [roles["late_device"]]
    load_days(conn, landing, [third])
    assert persons_of(conn, roles["late_device"]) == [roles["late_user"]]
    # The day that brought the link, emptied and loaded again: the events go back.
    for path in (landing / f"date={third.isoformat()}").iterdir():
        path.write_text("")
    load_days(conn, landing, [third])
    assert persons_of(conn, roles["late_device"]) == [roles["late_device"]]
    assert roles["late_device"] not in stored_identities(conn)


def test_a_device_that_meets_two_users_belongs_to_the_earliest_link_by_event_time(
    conn: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    fixture = vendor_exports.posthog_export(seed=0, size=2)
    roles = fixture.roles
    write_days(landing, fixture.records_by_day, "posthog")
    load_days(conn, landing, sorted(fixture.records_by_day))
    user, _, arrival = stored_identities(conn)[roles["shared_device"]]
    assert user == roles["user_a"]
    assert arrival == max(fixture.records_by_day)
    never = conn.execute(
        "select count(*) from events where user_id = $never", {"never": roles["never"]}
    ).fetchall()
    assert never == [(3,)]


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_mart_counts_persons(vendor: str, conn: duckdb.DuckDBPyConnection, landing) -> None:
    fixture = vendor_exports.ALL_EXPORTS[vendor](seed=3, size=5)
    write_days(landing, fixture.records_by_day, vendor)
    # Reverse order: the links arrive before the anonymous events they re-attribute.
    load_days(conn, landing, sorted(fixture.records_by_day, reverse=True))
    events, _ = reference_identity.events_and_identities(fixture.records_by_day)
    settings = Settings(
        home=Path("."),
        funnels=(Funnel("signup", ("page_view", "signup", "purchase"), window_seconds=3 * 86400),),
    )
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_daily_metrics(conn, settings)
    build_retention(conn)
    build_cohorts(conn)
    build_funnels(conn, settings)
    gap, conversion = settings.session_gap_seconds, settings.conversion_event
    expected = {
        "sessions": reference.sessions(events, gap),
        "users": reference.users(events, conversion, gap),
        "daily_metrics": reference.daily_metrics(events, conversion, gap),
        "retention": reference.retention(events),
        "cohorts": reference.cohorts(events),
        **reference_funnels.funnel_tables(
            [
                reference_funnels.Event(
                    e["event_id"], e["user_id"], e["event"], e["ts"], e["platform"], e["channel"]
                )
                for e in events
            ],
            settings.funnels,
        ),
    }
    for table, rows in expected.items():
        assert_rows_equal(conn, table, rows)
    # The story: every visitor who signed up and bought converts as one person.
    signed_up = {e["user_id"] for e in events if e["event"] == "signup"}
    users = conn.execute(
        "select users from funnel_steps where dimension = 'all' and step_index = 2"
    ).fetchall()
    assert users == [(len(signed_up),)]


def assert_rows_equal(conn: duckdb.DuckDBPyConnection, table: str, expected: list[dict]) -> None:
    result = conn.execute(f"select * from {table}")
    names = [d[0] for d in result.description]
    actual = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    columns = list(expected[0]) if expected else []
    key = columns[: len(columns)]

    def normalised(rows: list[dict]) -> list[tuple]:
        return sorted((tuple(_rounded(row[c]) for c in key) for row in rows), key=lambda t: repr(t))

    assert normalised(actual) == normalised(expected), table


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def test_a_sign_up_on_a_later_day_gives_the_person_their_anonymous_first_visit(
    conn: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    """First seen, acquisition and sessions follow the person: the visit from an ad two days
    before the sign-up is the person's first event, and the anonymous and identified events of
    the sign-up day form one session."""
    day1, day3 = dt.date(2026, 3, 2), dt.date(2026, 3, 4)
    segment = {"type": "track", "anonymousId": "d1"}
    write_days(
        landing,
        {
            day1: [
                {
                    **segment,
                    "event": "page_view",
                    "messageId": "m1",
                    "timestamp": "2026-03-02T09:00:00Z",
                    "context": {"campaign": {"source": "ads", "name": "spring"}},
                }
            ],
            day3: [
                {
                    **segment,
                    "event": "page_view",
                    "messageId": "m2",
                    "timestamp": "2026-03-04T10:00:00Z",
                },
                {
                    **segment,
                    "event": "signup",
                    "userId": "u1",
                    "messageId": "m3",
                    "timestamp": "2026-03-04T10:05:00Z",
                    "context": {"campaign": {"source": "email"}},
                },
            ],
        },
        "segment",
    )
    load_days(conn, landing, [day3, day1])
    settings = Settings(home=Path("."))
    build_sessions(conn, settings)
    build_users(conn, settings)
    user = conn.execute(
        "select user_id, first_seen_date, acquisition_channel, acquisition_campaign, events, "
        "sessions from users"
    ).fetchall()
    assert user == [("u1", day1, "ads", "spring", 3, 2)]
    sessions = conn.execute("select events from sessions order by started_at").fetchall()
    assert sessions == [(1,), (2,)]
