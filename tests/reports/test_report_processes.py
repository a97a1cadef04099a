"""A backfill's reports are written by several processes, each replaying the history for its
share of the days: the files are those one process writes."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from conftest import insert_events
from test_as_of import FUNNEL, _build, _events

from assets.reports.build import build_daily_reports, build_reports_in_processes, interleaved_shares
from pipelines import warehouse
from pipelines.as_of import as_of_warehouses
from pipelines.progress import counted
from pipelines.settings import Settings


def test_shares_cover_every_day_once_and_walk_the_same_history() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(361)]
    shares = interleaved_shares(days, 2)
    assert sorted(d for share in shares for d in share) == days
    assert [len(share) for share in shares] == [181, 180]
    # Each share reaches from the first days to the last, so each replays the same history.
    assert [share[0] for share in shares] == days[:2]
    assert [share[-1] for share in shares] == [days[-1], days[-2]]
    assert interleaved_shares(days[:1], 4) == [days[:1]]
    assert interleaved_shares([], 2) == []


def test_reports_written_by_two_processes_equal_those_of_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    settings = Settings(home=one, funnels=(FUNNEL,))
    conn = warehouse.connect(warehouse.published_path(one))
    try:
        # Late events too: every report but the last is built as of its day.
        events = _events(dt.date(2026, 2, 2), 24, seed=4)
        insert_events(
            conn,
            [
                {**e, "arrival_date": e["ts"].date() + dt.timedelta(days=n % 3)}
                for n, e in enumerate(events)
            ],
        )
        _build(conn, settings)
        conn.execute("checkpoint")
    finally:
        conn.close()
    shutil.copytree(one, two)
    days = [dt.date(2026, 2, 19) + dt.timedelta(days=n) for n in range(6)]

    with warehouse.reader(one) as conn:
        alone = list(build_daily_reports(conn, settings, days))
    lines: list[str] = []
    together = build_reports_in_processes(
        Settings(home=two, funnels=(FUNNEL,)),
        "daily",
        days,
        2,
        counted(lines.append, "daily report", len(days)),
    )

    assert [p.markdown.name for p in together] == [p.markdown.name for p in alone]
    for a, b in zip(alone, together, strict=True):
        assert b.markdown.read_bytes() == a.markdown.read_bytes()
        assert b.html.read_bytes() == a.html.read_bytes()
        assert [f.read_bytes() for f in b.figures] == [f.read_bytes() for f in a.figures]
        assert b.figures and all(str(f).startswith(str(two)) for f in b.figures)
    # Each report is told as the workers write it, counted in the caller's process.
    assert [line.split(":")[0] for line in lines] == [f"daily report {n} of 6" for n in range(1, 7)]
    assert sorted(line.split(": ", 1)[1] for line in lines) == [str(p.html) for p in together]


def test_the_replay_runs_on_the_callers_duckdb_threads(tmp_path: Path) -> None:
    """A report process's share of the CPUs holds for its in-memory replay too."""
    settings = Settings(home=tmp_path, funnels=(FUNNEL,))
    conn = warehouse.connect(warehouse.published_path(tmp_path))
    try:
        insert_events(conn, _events(dt.date(2026, 2, 2), 10, seed=5))
        _build(conn, settings)
        conn.execute("set threads = 1")
        day = dt.date(2026, 2, 6)  # not the last: replayed in memory
        with as_of_warehouses(conn, settings, [day]) as as_of:
            replayed = as_of(day)
            assert replayed is not conn
            assert replayed.execute("select current_setting('threads')").fetchall() == [(1,)]
    finally:
        conn.close()
