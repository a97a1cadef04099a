"""A daily report shows what was true on its day: written again after later days were loaded,
its numbers are the same (funnels, retention and cohorts as of the day, issue 16 item 2)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
from conftest import insert_events

from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from assets.reports.build import build_daily_report
from pipelines.settings import Funnel, Settings

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
