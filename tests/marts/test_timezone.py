"""The project `timezone` (issue 17 item 1, CONTRACT §3): every date, day, week and month in the
zone, `ts` in UTC. Events go through the real ingest into every mart and are compared with the
pure-Python references, whose days come from the standard library's zoneinfo (not from DuckDB).

The events sit where zones bite: around local midnight (sessions that cross it), on DST days
(23 and 25 hours; Los Angeles 2026-03-08 and 2026-11-01, London 2026-03-29 and 2026-10-25),
in weeks and months that contain a DST change, and in a zone with a half-hour offset.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
import reference
import reference_funnels as ref_funnels
from test_funnels import assert_same_rows as assert_same_funnel_rows
from test_marts import assert_same_rows, fetch

from assets.ingest.load import load_partition
from assets.marts.cohorts import build_cohorts, update_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics, update_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users, update_sessions, update_users
from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.partitions import daily_partitions, window_days
from pipelines.settings import Funnel, RetentionDefinition, Settings, parse_settings

ZONES = ["America/Los_Angeles", "Europe/London", "Asia/Kolkata"]
GAP = 1800
FUNNELS = (
    Funnel("signup_flow", ("page_view", "signup", "purchase"), window_seconds=86400),
    Funnel("any_order", ("signup", "purchase"), window_seconds=3 * 86400, order="unordered"),
)
DEFINITIONS = (RetentionDefinition("any"), RetentionDefinition("buyers", "signup", "purchase"))
# Local instants where a zone's day, week or month turns, or its clock jumps (UTC below).
SHARP_TIMES = [
    "2026-03-08T07:59:59",  # 23:59:59 in Los Angeles, 2026-03-07
    "2026-03-08T08:00:00",  # Los Angeles midnight of its 23-hour day
    "2026-03-08T09:59:00",  # 01:59 PST, a minute before the clock jumps to 03:00
    "2026-03-08T10:00:00",  # 03:00 PDT
    "2026-03-09T06:59:00",  # 23:59 PDT, the last minute of the 23-hour day
    "2026-03-29T00:30:00",  # 00:30 GMT in London; 01:00 becomes 02:00 BST
    "2026-03-29T23:30:00",  # 00:30 BST in London, 2026-03-30: a Monday
    "2026-03-31T18:29:59",  # 23:59:59 in Kolkata, the month's last second there
    "2026-03-31T18:30:00",  # midnight in Kolkata, 2026-04-01
    "2026-10-25T00:59:00",  # 01:59 BST in London, before the clock goes back
    "2026-10-25T01:30:00",  # 01:30 GMT, the repeated hour of the 25-hour day
    "2026-11-01T08:30:00",  # 01:30 PDT in Los Angeles, the hour that repeats...
    "2026-11-01T09:30:00",  # ...01:30 PST
    "2026-11-02T07:59:00",  # 23:59 PST, the end of the 25-hour day
]


def random_events(seed: int) -> list[dict[str, Any]]:
    """Events of a few users around the sharp times: some a few minutes apart (sessions across
    local midnight), some days or weeks later (retention across DST changes)."""
    rng = random.Random(seed)
    events = []
    for n in range(160):
        base = dt.datetime.fromisoformat(rng.choice(SHARP_TIMES))
        offset = rng.choice(
            [
                rng.randrange(-600, 600),  # minutes around the sharp time
                rng.randrange(-3 * 3600, 3 * 3600),
                rng.randrange(0, 40 * 86400),  # later days, weeks and months
            ]
        )
        user = f"u{rng.randrange(12)}"
        events.append(
            {
                "event_id": f"e{n}",
                "user_id": user,
                "event": rng.choice(["page_view", "page_view", "signup", "purchase"]),
                "ts": base + dt.timedelta(seconds=offset),
                "platform": rng.choice(["ios", "web", None]),
                "channel": rng.choice(["ads", "organic"]),
                "campaign": None,
                "revenue": rng.choice([None, 2.5]),
            }
        )
    return events


def land(landing: Path, events: list[dict[str, Any]]) -> list[dt.date]:
    """The events as JSON lines, one arrival folder per UTC day (where a collector puts them)."""
    by_day: dict[dt.date, list[str]] = {}
    for e in events:
        record = {k: v for k, v in e.items() if k != "ts" and v is not None}
        record["timestamp"] = e["ts"].isoformat() + "Z"
        by_day.setdefault(e["ts"].date(), []).append(json.dumps(record))
    for day, lines in by_day.items():
        folder = landing / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    return sorted(by_day)


def zone_settings(timezone: str) -> Settings:
    return Settings(
        home=Path("."),
        session_gap_seconds=GAP,
        funnels=FUNNELS,
        retention=DEFINITIONS,
        timezone=timezone,
    )


def build_all(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_daily_metrics(conn, settings)
    build_retention(conn, settings.retention, settings.timezone)
    build_cohorts(conn)
    build_funnels(conn, settings)


def load_all(conn: duckdb.DuckDBPyConnection, landing: Path, days: list[dt.date], zone: str):
    for day in days:
        load_partition(conn, landing, day, timezone=zone)


def assert_marts_match_the_reference(
    conn: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], zone: str
) -> None:
    expected = {
        "sessions": reference.sessions(events, GAP),
        "users": reference.users(events, "purchase", GAP, zone),
        "daily_metrics": reference.daily_metrics(events, "purchase", GAP, zone),
        "retention": reference.retention(events, DEFINITIONS, zone),
        "cohorts": reference.cohorts(events, zone),
    }
    for table, rows in expected.items():
        assert_same_rows(table, fetch(conn, table), rows)
    funnel_events = [
        ref_funnels.Event(
            e["event_id"],
            e["user_id"],
            e["event"],
            e["ts"],
            platform=e["platform"],
            channel=e["channel"],
        )
        for e in events
    ]
    funnels = ref_funnels.funnel_tables(funnel_events, FUNNELS, zone)
    for table in ("funnel_steps", "funnel_daily"):
        assert_same_funnel_rows(table, fetch(conn, table), funnels[table])


@pytest.mark.parametrize("zone", ZONES)
def test_every_mart_cuts_days_weeks_and_months_in_the_project_zone(tmp_path: Path, zone: str):
    events = random_events(seed=ZONES.index(zone))
    landing = tmp_path / "landing"
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        load_all(conn, landing, land(landing, events), zone)
        stored = conn.execute("select event_id, ts, event_date from events").fetchall()
        assert {(i, d) for i, _, d in stored} == {
            (e["event_id"], reference.day_of(e["ts"], zone)) for e in events
        }
        assert {(i, ts) for i, ts, _ in stored} == {(e["event_id"], e["ts"]) for e in events}
        build_all(conn, zone_settings(zone))
        assert_marts_match_the_reference(conn, events, zone)
    finally:
        conn.close()


def test_a_dst_day_has_23_or_25_hours_of_events(tmp_path: Path) -> None:
    """One event every hour of UTC: Los Angeles' spring-forward day holds 23 of them, its
    fall-back day 25, and a session crossing local midnight counts on the day it started."""
    start = dt.datetime(2026, 3, 7, 0, 0)
    hourly = [start + dt.timedelta(hours=n) for n in range(96)]
    autumn = dt.datetime(2026, 10, 31, 0, 0)
    hourly += [autumn + dt.timedelta(hours=n) for n in range(96)]
    events = [
        {
            "event_id": f"h{n}",
            "user_id": f"u{n}",  # one user per hour: active users count the hours
            "event": "page_view",
            "ts": ts,
            "platform": "web",
            "channel": "organic",
            "campaign": None,
            "revenue": None,
        }
        for n, ts in enumerate(hourly)
    ]
    landing = tmp_path / "landing"
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        load_all(conn, landing, land(landing, events), "America/Los_Angeles")
        build_all(conn, zone_settings("America/Los_Angeles"))
        active = dict(
            conn.execute(
                "select metric_date, active_users from daily_metrics "
                "where dimension = 'all' and metric_date in "
                "('2026-03-08', '2026-03-09', '2026-11-01', '2026-11-02')"
            ).fetchall()
        )
    finally:
        conn.close()
    assert active == {
        dt.date(2026, 3, 8): 23,
        dt.date(2026, 3, 9): 24,
        dt.date(2026, 11, 1): 25,
        dt.date(2026, 11, 2): 24,
    }


def test_a_changed_zone_dates_every_stored_event_again_and_the_marts_follow(tmp_path: Path):
    """Loaded and built in UTC, then the project moves to Los Angeles: the next load dates the
    stored events again, and the updated marts equal a fresh build in the new zone."""
    events = random_events(seed=11)
    landing = tmp_path / "landing"
    days = land(landing, events)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    zone = "America/Los_Angeles"
    try:
        load_all(conn, landing, days[:-1], "UTC")
        for update in (update_sessions, update_users, update_daily_metrics):
            update(conn, zone_settings("UTC"))
        update_cohorts(conn)
        load_partition(conn, landing, days[-1], timezone=zone)
        for update in (update_sessions, update_users, update_daily_metrics):
            assert update(conn, zone_settings(zone)).mode == "full"
        update_cohorts(conn)
        build_retention(conn, DEFINITIONS, zone)
        build_funnels(conn, zone_settings(zone))
        assert_marts_match_the_reference(conn, events, zone)
    finally:
        conn.close()


def test_incremental_loads_in_a_zone_equal_the_reference(tmp_path: Path) -> None:
    """Arrival days loaded one by one in a zone, out of order, marts updated after each."""
    events = random_events(seed=5)
    landing = tmp_path / "landing"
    days = land(landing, events)
    random.Random(5).shuffle(days)
    zone = "Europe/London"
    settings = zone_settings(zone)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        for n, day in enumerate(days):
            load_partition(conn, landing, day, timezone=zone)
            modes = {
                update_sessions(conn, settings).mode,
                update_users(conn, settings).mode,
                update_daily_metrics(conn, settings).mode,
                update_cohorts(conn).mode,
            }
            assert modes == ({"full"} if n == 0 else {"incremental"})
        build_retention(conn, DEFINITIONS, zone)
        build_funnels(conn, settings)
        assert_marts_match_the_reference(conn, events, zone)
    finally:
        conn.close()


def test_daily_partitions_end_at_the_zones_midnight() -> None:
    settings = Settings(home=Path("."), start_date=dt.date(2026, 3, 7), timezone="Asia/Kolkata")
    partitions = daily_partitions(settings)
    window = partitions.time_window_for_partition_key("2026-03-08")
    assert window.start.isoformat() == "2026-03-08T00:00:00+05:30"
    assert window_days(window.start, window.end) == [dt.date(2026, 3, 8)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Asia/Seol", "did you mean 'Asia/Seoul'"),
        ("utc", "did you mean 'UTC'"),
        (9, "timezone 9 is not an IANA time zone"),
        ("", "is not an IANA time zone"),
    ],
)
def test_an_unknown_zone_is_one_sentence_naming_it(value: Any, message: str) -> None:
    with pytest.raises(EventpulseError, match=message) as raised:
        parse_settings({"timezone": value}, home=Path("."))
    assert "\n" not in str(raised.value)


def test_without_the_key_every_date_is_utc() -> None:
    assert parse_settings({}, home=Path(".")).timezone == "UTC"
    assert parse_settings({"timezone": "Pacific/Auckland"}, home=Path(".")).timezone == (
        "Pacific/Auckland"
    )
