"""Where an ingest's CPU goes: every SQL statement of a load timed on its own.

Two loads are profiled: the 1M-record JSON-lines day of `ingest_bench.py` (vendor paths and
two configured aliases on) into an empty warehouse, and a backfill's range load of the demo
generator's first DAYS arrival days (20,000 users, as `ingest_range_bench.py`). Each statement
of each sql/ file is named `file#n` (its 0-based place in the file) with its CPU seconds (user +
system of the process, all DuckDB threads), wall seconds and how often it ran; the queries the
ingest runs from Python are named after the function that runs them. A shared machine inflates
CPU seconds too: read the shares, and time changes with `ingest_compare.py`.

    python -m benchmarks.ingest_profile [DAYS]          (default: 90)
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from assets.ingest import load
from benchmarks.ingest_bench import ALIASES, DAY, RECORDS, write_events
from pipelines import sql, warehouse
from pipelines.demo import generate
from pipelines.landing import landing_dates

RESULTS = Path(__file__).parent / "results"
USERS = 20_000
END = dt.date(2026, 12, 4)
TOP = 20


def main(days: int = 90) -> None:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eventpulse-profile-") as scratch:
        figures = {
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "day": _profile_day(Path(scratch) / "day"),
            "range": _profile_range(Path(scratch) / "range", days),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    (RESULTS / "ingest_profile.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "ingest_profile.md").write_text(_report(figures))
    print((RESULTS / "ingest_profile.md").read_text())


def _profile_day(home: Path) -> dict:
    landing = home / "landing" / "events"
    write_events(landing / f"date={DAY}" / "events.jsonl", RECORDS)
    with _profiled(home / "warehouse.duckdb") as (conn, statements):
        load.load_partition(conn, landing, DAY, ALIASES)
    return {"records": RECORDS, **statements}


def _profile_range(home: Path, days: int) -> dict:
    summary = generate(home, days=days, users=USERS, seed=7, end=END)
    landing = home / "landing" / "events"
    arrival_days = landing_dates(landing, today=END)
    with _profiled(home / "warehouse.duckdb") as (conn, statements):
        load.load_range(conn, landing, arrival_days)
    return {"records": summary.records, "days": len(arrival_days), **statements}


class _TimedConnection:
    """The connection, with the queries run from Python (not from sql/ files) timed under the
    name of the function that runs them."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, timed) -> None:
        self._conn = conn
        self._timed = timed

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    def execute(self, query, parameters=None):
        def run():
            if parameters is None:
                return self._conn.execute(query)
            return self._conn.execute(query, parameters)

        if not isinstance(query, str):
            return run()  # a statement of a sql/ file: timed by run_sql
        return self._timed(f"py:{inspect.stack()[1].function}", run)


@contextmanager
def _profiled(path: Path) -> Iterator[tuple[_TimedConnection, dict]]:
    """A connection whose every statement is timed; yields it and the figures, filled in when
    the block ends."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    current = ["python"]

    def timed(name: str, run):
        cpu, wall = _cpu_seconds(), time.perf_counter()
        try:
            return run()
        finally:
            entry = totals[name]
            entry[0] += _cpu_seconds() - cpu
            entry[1] += time.perf_counter() - wall
            entry[2] += 1

    original_file = sql.run_sql_file

    def run_sql_file(conn, name, params=None):
        outer, current[0] = current[0], name
        try:
            return original_file(conn, name, params)
        finally:
            current[0] = outer

    def run_sql(conn, text, params=None):
        params = params or {}
        for n, statement in enumerate(conn.extract_statements(text)):
            wanted = {k: params[k] for k in statement.named_parameters}
            run = (
                (lambda s=statement, w=wanted: conn.execute(s, w))
                if wanted
                else (lambda s=statement: conn.execute(s))
            )
            timed(f"{current[0]}#{n}", run)

    # Every module that imported run_sql_file by name, and the one that runs the statements.
    patched = [(sql, "run_sql", run_sql), (sql, "run_sql_file", run_sql_file)]
    patched += [(m, "run_sql_file", run_sql_file) for m in (load, warehouse)]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patched]
    for module, name, replacement in patched:
        setattr(module, name, replacement)
    conn = warehouse.connect(path)
    figures: dict = {}
    cpu, wall = _cpu_seconds(), time.perf_counter()
    try:
        yield _TimedConnection(conn, timed), figures
    finally:
        total_cpu, total_wall = _cpu_seconds() - cpu, time.perf_counter() - wall
        for module, name, value in saved:
            setattr(module, name, value)
        conn.close()
    ranked = sorted(totals.items(), key=lambda item: -item[1][0])
    figures.update(
        cpu_s=round(total_cpu, 2),
        wall_s=round(total_wall, 2),
        statements_cpu_s=round(sum(entry[0] for entry in totals.values()), 2),
        statements=[
            {"name": name, "cpu_s": round(c, 3), "wall_s": round(w, 3), "runs": n}
            for name, (c, w, n) in ranked
        ],
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(f: dict) -> str:
    def table(load: dict) -> str:
        rows = "\n".join(
            f"| `{s['name']}` | {s['cpu_s']:.2f} | {100 * s['cpu_s'] / load['cpu_s']:.0f}% "
            f"| {s['wall_s']:.2f} | {s['runs']} |"
            for s in load["statements"][:TOP]
        )
        return (
            f"{load['cpu_s']:.2f} CPU s, {load['wall_s']:.2f} s wall; "
            f"{load['statements_cpu_s']:.2f} CPU s in the statements below and the others.\n\n"
            "| statement | CPU s | share | wall s | runs |\n|---|---:|---:|---:|---:|\n"
            f"{rows}\n"
        )

    day, ranged = f["day"], f["range"]
    averages = "/".join(f"{x:.1f}" for x in f["load_average_before"])
    after = "/".join(f"{x:.1f}" for x in f["load_average_after"])
    return (
        "# Ingest profile: CPU per statement\n\n"
        f"Load average {averages} before, {after} after (1, 5, 15 min): CPU seconds grow "
        "with the machine's load too; compare shares, and time changes with "
        "`ingest_compare.py`. `file#n` is the n-th statement (from 0) of `sql/file`; `py:f` "
        "the queries function `f` of `assets/ingest/load.py` runs itself.\n\n"
        f"## One day of {day['records']:,} JSON-lines records into an empty warehouse\n\n"
        f"{table(day)}\n"
        f"## A backfill: {ranged['days']} arrival days of the demo generator "
        f"({ranged['records']:,} records), one `load_range`\n\n"
        f"{table(ranged)}"
    )


if __name__ == "__main__":
    main(*[int(arg) for arg in sys.argv[1:2]])
