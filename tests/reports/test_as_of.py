"""A daily report shows what was true on its day: written again after later days were loaded,
its numbers are the same (every event-history mart as of what had arrived by the day, issue 16
item 2)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest
from conftest import insert_events
from random_arrivals import DAYS, random_record, write_day

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import score_changed_days
from assets.ingest.load import load_partition
from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from assets.reports.build import build_daily_report
from pipelines import warehouse
from pipelines.as_of import as_of_warehouse, as_of_warehouses
from pipelines.settings import Funnel, Settings
from pipelines.sql import run_sql_file

DAY = dt.date(2026, 3, 11)  # a Wednesday: week and month periods are running on it
FUNNEL = Funnel("checkout", ("page_view", "add_to_cart", "purchase"), window_seconds=3 * 86400)


def _events(first: dt.date, days: int, seed: int) -> list[dict]:
    """Each day ten new users view, often add to cart and sometimes buy up to 2.5 days later,
    and some earlier users come back: later days change the funnels (attempts completing),
    retention (returning users) and cohorts."""
    rng = random.Random(seed)
    rows, seen = [], []
    for n in range(days):
        day = first + dt.timedelta(days=n)
        newcomers = [f"u{n}-{k}" for k in range(10)]
        for user in newcomers + rng.sample(seen, min(len(seen), 15)):
            at = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
            rows.append({"user_id": user, "event": "page_view", "ts": at})
            if rng.random() < 0.6:
                later = at + dt.timedelta(hours=rng.randrange(1, 60))
                rows.append({"user_id": user, "event": "add_to_cart", "ts": later})
                if rng.random() < 0.5:
                    rows.append(
                        {
                            "user_id": user,
                            "event": "purchase",
                            "ts": later + dt.timedelta(hours=3),
                            "revenue": 12.5,
                        }
                    )
        seen.extend(newcomers)
    return rows


def _build(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_daily_metrics(conn, settings)
    build_retention(conn)
    build_cohorts(conn)
    build_funnels(conn, settings)


def _report_files(paths) -> dict[str, bytes]:
    files = (paths.markdown, paths.html, *paths.figures)
    return {p.name: p.read_bytes() for p in files}


def test_report_written_after_later_days_were_loaded_is_identical(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", funnels=(FUNNEL,))
    until_day = [e for e in _events(dt.date(2026, 2, 2), 45, seed=3) if e["ts"].date() <= DAY]
    later = [e for e in _events(dt.date(2026, 2, 2), 45, seed=3) if e["ts"].date() > DAY]
    insert_events(conn, until_day)
    _build(conn, settings)
    before = _report_files(build_daily_report(conn, settings, DAY))

    insert_events(conn, later)
    _build(conn, settings)
    # The later days did change the marts the report draws from...
    (late_entries,) = conn.execute(
        "select sum(users) from funnel_daily where entry_date = $d and step_index = 3",
        {"d": DAY},
    ).fetchone()
    assert late_entries > 0
    after = _report_files(build_daily_report(conn, settings, DAY))

    # ...but not the report of the day: same files, byte for byte.
    assert after == before
    markdown = before["2026-03-11.md"].decode()
    # The day's own funnel entries are still within their window: said, not shown as a drop.
    assert "have until 2026-03-15 00:00 UTC to finish" in markdown


AS_OF_TABLES = (
    "sessions",
    "users",
    "daily_metrics",
    "retention",
    "cohorts",
    "funnel_steps",
    "funnel_daily",
)


def _load_and_build(path: Path, landing: Path, days: list[dt.date], settings: Settings) -> None:
    conn = warehouse.connect(path)
    try:
        for day in days:
            load_partition(conn, landing, day)
        _build(conn, settings)
        conn.execute("checkpoint")
    finally:
        conn.close()


def _table_rows(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"select * from {t} order by all").fetchall() for t in AS_OF_TABLES}


@pytest.mark.parametrize("seed", range(3))
def test_late_events_and_later_links_leave_an_earlier_day_as_it_was(
    tmp_path: Path, seed: int
) -> None:
    """Days arrive with late events (up to 4 days), re-sent copies and anonymous visitors who
    sign up later. The warehouse as of a day, taken after every day was loaded (in any order),
    equals the warehouse that had loaded only the days up to it, table by table, and the day's
    report is the same file."""
    rng = random.Random(seed)
    settings = Settings(
        home=tmp_path / "home",
        conversion_event="purchase",
        session_gap_seconds=1800,
        funnels=(Funnel("signup", ("page_view", "signup", "purchase"), window_seconds=86400),),
    )
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    for day in DAYS:
        write_day(landing, day, [random_record(rng, day, shared_ids) for _ in range(30)])
    report_day = DAYS[5]
    then, now = tmp_path / "then.duckdb", tmp_path / "now.duckdb"
    _load_and_build(then, landing, [d for d in DAYS if d <= report_day], settings)
    _load_and_build(now, landing, rng.sample(DAYS, len(DAYS)), settings)

    then_conn, now_conn = warehouse.connect(then), warehouse.connect(now)
    try:
        late, relinked = now_conn.execute(
            "select count(*) filter (where arrival_date > $d and event_date <= $d), "
            "count(*) filter (where arrival_date > $d and anonymous_id is not null "
            "and identified) from event_copies where kept",
            {"d": report_day},
        ).fetchone()
        assert late > 0 and relinked > 0  # the later days do reach back
        expected = _table_rows(then_conn)
        with as_of_warehouse(now_conn, settings, report_day) as as_of:
            assert as_of is not now_conn
            got = _table_rows(as_of)
        for table in AS_OF_TABLES:
            assert got[table] == expected[table], f"{table} as of {report_day} differs"
        before = _report_files(build_daily_report(then_conn, settings, report_day))
        after = _report_files(build_daily_report(now_conn, settings, report_day))
        assert after == before
    finally:
        then_conn.close()
        now_conn.close()


def test_replaying_every_day_gives_the_warehouse_each_day_had(tmp_path: Path) -> None:
    """The reports of a backfill replay the history one day after another (the marts updated
    with what each day added, anonymous events moved as links arrive): on every calendar day,
    arrival days and the days between them, each table equals that of a warehouse that had
    loaded only the arrival days up to it and rebuilt its marts."""
    rng = random.Random(100)
    settings = Settings(
        home=tmp_path / "home",
        funnels=(Funnel("signup", ("page_view", "signup", "purchase"), window_seconds=86400),),
    )
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    for day in DAYS:
        write_day(landing, day, [random_record(rng, day, shared_ids) for _ in range(30)])
    report_days = [DAYS[0] + dt.timedelta(days=n) for n in range((DAYS[-1] - DAYS[0]).days + 2)]
    tables = (*AS_OF_TABLES, "dimension_values")

    then = warehouse.connect(Path(":memory:"))
    expected = {}
    try:
        for day in report_days:
            if day in DAYS:
                load_partition(then, landing, day)
            _build(then, settings)
            expected[day] = {t: then.execute(f"from {t} order by all").fetchall() for t in tables}
    finally:
        then.close()
    now = warehouse.connect(Path(":memory:"))
    try:
        for day in rng.sample(DAYS, len(DAYS)):
            load_partition(now, landing, day)
        _build(now, settings)
        with as_of_warehouses(now, settings, report_days) as as_of:
            for day in report_days:
                conn = as_of(day)
                for table in tables:
                    got = conn.execute(f"from {table} order by all").fetchall()
                    assert got == expected[day][table], f"{table} as of {day} differs"
    finally:
        now.close()


def _anomaly_rows(conn: duckdb.DuckDBPyConnection, day: dt.date) -> dict[str, list[tuple]]:
    return {
        table: conn.execute(
            f"select * from {table} where metric_date <= $d order by all", {"d": day}
        ).fetchall()
        for table in ("anomalies", "anomaly_incidents")
    }


def _score(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    write_anomalies(conn, score_changed_days(conn, settings.anomalies), settings.anomalies)


def test_a_day_scored_again_after_late_events_shows_its_first_scores_as_of_the_day(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The daily runs of a month, then late events for the last two days: those days are scored
    again, but the warehouse as of the last day shows the anomaly rows and incidents its own
    run scored. A run that knew nothing new replaces rows for good."""
    settings = Settings(home=tmp_path / "home", funnels=(FUNNEL,))
    events = _events(dt.date(2026, 2, 2), 45, seed=5)
    # A burst on the report day, so that it has flagged rows and an incident.
    burst = [
        {"user_id": f"b{n}", "event": "page_view", "ts": dt.datetime.combine(DAY, dt.time(12))}
        for n in range(60)
    ]
    for day in sorted({e["ts"].date() for e in events if e["ts"].date() <= DAY}):
        insert_events(
            conn, [e for e in events if e["ts"].date() == day] + (burst if day == DAY else [])
        )
        _build(conn, settings)
        _score(conn, settings)
    then = _anomaly_rows(conn, DAY)
    assert then["anomaly_incidents"], "the burst day should have an incident"

    late = [
        {**e, "ts": e["ts"].replace(hour=23), "arrival_date": DAY + dt.timedelta(days=2)}
        for e in _events(dt.date(2026, 3, 10), 2, seed=9)
    ]
    insert_events(conn, late + [e for e in events if e["ts"].date() > DAY])
    _build(conn, settings)
    _score(conn, settings)
    _score(conn, settings)  # nothing new: nothing replaced, nothing kept twice
    assert _anomaly_rows(conn, DAY) != then  # the late events did change the day's scores

    with as_of_warehouse(conn, settings, DAY) as as_of:
        assert as_of is not conn
        assert _anomaly_rows(as_of, DAY) == then
    # The same in a replay of several days (the reports of a backfill).
    with as_of_warehouses(conn, settings, [DAY - dt.timedelta(days=3), DAY]) as as_of:
        as_of(DAY - dt.timedelta(days=3))
        assert _anomaly_rows(as_of(DAY), DAY) == then


def test_replayed_anomaly_rows_follow_the_reference_rule_on_every_day(
    conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The replay picks each day's anomaly rows day by day, re-deciding only the days whose
    versions' arrival days it passes (sql/as_of/anomalies_day.sql): on every day of a replay
    across rescored days they equal the rule applied to all versions at once
    (sql/marts/anomalies_as_of.sql, the reference)."""
    settings = Settings(home=tmp_path / "home", funnels=(FUNNEL,))
    events = _events(dt.date(2026, 2, 2), 45, seed=7)
    days = sorted({e["ts"].date() for e in events})
    for day in days[: len(days) - 6]:
        insert_events(conn, [e for e in events if e["ts"].date() == day])
        _build(conn, settings)
        _score(conn, settings)
    # Late events arriving over the last days: earlier days scored again, versions kept.
    for n, day in enumerate(days[len(days) - 6 :]):
        late = [
            {**e, "ts": e["ts"].replace(hour=23), "arrival_date": day}
            for e in _events(day - dt.timedelta(days=3 + n % 2), 1, seed=20 + n)
        ]
        insert_events(conn, [e for e in events if e["ts"].date() == day] + late)
        _build(conn, settings)
        _score(conn, settings)
    (history,) = conn.execute("select count(*) from anomaly_history").fetchone()
    assert history > 0, "the late events should have replaced some scored rows"
    replayed = days[len(days) - 12 :]
    with as_of_warehouses(conn, settings, replayed) as as_of:
        for day in replayed:
            got = _anomaly_rows(as_of(day), day)
            assert got == _reference_anomaly_rows(conn, day), f"anomalies as of {day} differ"


def _reference_anomaly_rows(conn: duckdb.DuckDBPyConnection, day: dt.date) -> dict:
    """sql/marts/anomalies_as_of.sql applied to a copy of the warehouse's anomaly tables."""
    tables = (
        "anomalies",
        "anomaly_incidents",
        "anomaly_days",
        "anomaly_history",
        "anomaly_incident_history",
    )
    reference = duckdb.connect()
    try:
        for table in tables:
            rows = conn.sql(f"from {table}").arrow()
            reference.register("copied", rows)
            reference.execute(f"create table {table} as from copied")
            reference.unregister("copied")
        run_sql_file(reference, "marts/anomalies_as_of.sql", {"day": day})
        return _anomaly_rows(reference, day)
    finally:
        reference.close()
