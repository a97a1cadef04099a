"""A backfill's ingest: N arrival days of the demo generator (20,000 users, ~7,500 records a
day) loaded into an empty warehouse one `load_partition` per day (how `eventpulse run` loaded a
range before) and with one `load_range` (how it loads one now), timed side by side in the same
run; then every ingest table of the two warehouses is compared row for row.

    python -m benchmarks.ingest_range_bench [DAYS ...]     (default: 360)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from assets.ingest.load import load_partition, load_range
from pipelines import warehouse
from pipelines.demo import generate
from pipelines.landing import landing_dates

RESULTS = Path(__file__).parent / "results"
USERS = 20_000
END = dt.date(2026, 12, 4)
# Every ingest table, sorted whole; ingest_log without its clock columns.
TABLES = {
    # As `events` reads it: an identified copy sent under its person's id stores no distinct_id
    # (macros/identity.sql identified_sent_id), so revisions before that compare equal.
    "event_copies": "select * replace (coalesce(distinct_id, user_id) as distinct_id) "
    "from event_copies",
    "quarantine": "select * from quarantine",
    "ingest_log": "select * exclude (started_at, finished_at) from ingest_log",
    "identities": "select * from identities",
    "user_keys": "select * from user_keys",
    "mart_changes": "select * from mart_changes",
}


def main(day_counts: list[int] | None = None) -> None:
    RESULTS.mkdir(exist_ok=True)
    figures = [_measure(days) for days in day_counts or [360]]
    (RESULTS / "ingest_range_bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "ingest_range_bench.md").write_text(_report(figures))
    print((RESULTS / "ingest_range_bench.md").read_text())


def _measure(days: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="eventpulse-range-") as scratch:
        home = Path(scratch)
        summary = generate(home, days=days, users=USERS, seed=7, end=END)
        landing = home / "landing" / "events"
        arrival_days = landing_dates(landing, today=END)
        load_before = os.getloadavg()[0]
        sequential = _timed(home / "sequential.duckdb", landing, arrival_days, per_day=True)
        ranged = _timed(home / "ranged.duckdb", landing, arrival_days, per_day=False)
        identical = tables_equal(home / "sequential.duckdb", home / "ranged.duckdb")
    return {
        "days": days,
        "records": summary.records,
        "sequential": sequential,
        "range": ranged,
        "tables_identical": identical,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def _timed(path: Path, landing: Path, days: list[dt.date], per_day: bool) -> dict:
    conn = warehouse.connect(path)
    try:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        if per_day:
            for day in days:
                load_partition(conn, landing, day)
        else:
            load_range(conn, landing, days)
        return {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(_cpu_seconds() - cpu, 1),
        }
    finally:
        conn.close()


def _cpu_seconds() -> float:
    # All threads of this process (DuckDB's included).
    times = os.times()
    return times.user + times.system


def tables_equal(first: Path, second: Path) -> bool | None:
    """Whether two warehouses hold the same ingest tables, row for row (TABLES); None when one
    lacks a table or column of TABLES (a revision from before it: nothing to compare)."""
    try:
        return _tables(first) == _tables(second)
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def _tables(path: Path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {
            name: conn.execute(f"{sql} order by all").fetchall() for name, sql in TABLES.items()
        }
    finally:
        conn.close()


def _report(figures: list[dict]) -> str:
    lines = [
        "# Backfill ingest: one load per day vs one range load",
        "",
        f"Demo generator, {USERS:,} users, seed 7, into an empty warehouse; the two ways timed "
        "one after the other in the same run (2-core machine shared with other work: compare "
        "CPU seconds and the ratio; the load average is the 1-minute load).",
        "",
        "| arrival days | records | per day: wall s | per day: CPU s | range: wall s "
        "| range: CPU s | CPU ratio | tables identical | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        seq, ranged = f["sequential"], f["range"]
        lines.append(
            f"| {f['days']} | {f['records']:,} | {seq['wall_s']} | {seq['cpu_s']} "
            f"| {ranged['wall_s']} | {ranged['cpu_s']} "
            f"| {seq['cpu_s'] / max(ranged['cpu_s'], 0.1):.1f}x | {f['tables_identical']} "
            f"| {f['load_average_before']} -> {f['load_average_after']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or None)
