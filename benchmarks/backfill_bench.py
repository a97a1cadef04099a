"""Benchmark: a backfill from scratch, `eventpulse run` over every arrival day of a new home.

Issue 14: backfilling 360 days of history must take at most 5 minutes. The demo generator
writes `--days` arrival folders (the histories of benchmarks/daily_run_bench.py: 60 days x 5,000
users and 360 days x 20,000 users, both ending at about 7,000-8,000 records a day), then one
`eventpulse run` loads them all and writes everything downstream. Timed: the CLI's wall time
and each Dagster step's time from the event log, summed by stage.

Run: `.venv/bin/python -m benchmarks.backfill_bench [days ...]` (part of `make bench`; the
360-day backfill takes the longest of all benchmarks). Writes
`benchmarks/results/backfill_bench.md` and `.json`. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.daily_run_bench import (
    HISTORIES,
    SEED,
    cli,
    run_steps_since,
    write_run_results,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Stage of each step (a step key starts with its asset's name; checks follow their asset).
STAGES = (
    ("ingest", ("events",)),
    ("anomalies", ("anomal",)),
    ("reports", ("daily_report", "weekly_report")),
    ("corpus", ("corpus",)),
)
# The 360-day backfill before this benchmark existed (README, the code of e6d025b, load 5-9).
EARLIER_360 = {
    "seconds": 4934,
    "stages": {"ingest": 596, "anomalies": 170, "reports": 2861, "corpus": 1246},
}


def main(only_days: list[int] | None = None) -> None:
    runs = [
        backfill(days, users) for days, users in HISTORIES if not only_days or days in only_days
    ]
    write_run_results("backfill", runs, markdown)


def backfill(days: int, users: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="eventpulse-backfill-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        cli(home, "generate", "--days", str(days), "--users", str(users), "--seed", str(SEED))
        load_before = os.getloadavg()[0]
        since = time.time()
        started = time.perf_counter()
        cli(home, "run")
        seconds = time.perf_counter() - started
        steps = run_steps_since(home / "dagster", since)
        records = _records(home)
        shutil.rmtree(home / "dagster", ignore_errors=True)
    return {
        "history_days": days,
        "users": users,
        "records": records,
        "seconds": round(seconds, 1),
        "stages": stage_seconds(steps),
        "steps": steps,
        "load_average_1min_before": round(load_before, 1),
    }


def stage_seconds(steps: dict[str, float]) -> dict[str, float]:
    stages = {name: 0.0 for name, _ in STAGES} | {"marts": 0.0}
    for step, seconds in steps.items():
        stage = next((name for name, prefixes in STAGES if step.startswith(prefixes)), "marts")
        stages[stage] = round(stages[stage] + seconds, 1)
    return stages


def _records(home: Path) -> int:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute("select coalesce(sum(records), 0) from ingest_log").fetchall()[0][0]
    finally:
        conn.close()


def markdown(runs: list[dict], machine: dict) -> str:
    names = [name for name, _ in STAGES[:1]] + ["marts"] + [name for name, _ in STAGES[1:]]
    lines = [
        "# Backfill benchmark (issue 14)",
        "",
        f"DuckDB {machine['duckdb']}, {machine['cpus']} CPUs, Python {machine['python']}, a "
        "machine shared with other work (noisy). Demo data (seed 7), every arrival day loaded "
        "by one `eventpulse run` in a new home; stage times are the sums of their Dagster "
        "steps (the two runs of `eventpulse run` also start processes and publish the "
        "warehouse). Command: `.venv/bin/python -m benchmarks.backfill_bench` (part of "
        "`make bench`).",
        "",
        "| | " + " | ".join(f"{r['history_days']} days" for r in runs) + " | 360 days before |",
        "|---|" + "---:|" * (len(runs) + 1),
        "| users / records | "
        + " | ".join(f"{r['users']:,} / {r['records']:,}" for r in runs)
        + " | 20,000 / 1,577,926 |",
        "| **backfill** (CLI wall time) | "
        + " | ".join(f"**{r['seconds']:,.0f} s**" for r in runs)
        + f" | {EARLIER_360['seconds']:,} s |",
    ]
    for name in names:
        before = EARLIER_360["stages"].get(name)
        lines.append(
            f"| {name} | "
            + " | ".join(f"{r['stages'].get(name, 0):,.0f} s" for r in runs)
            + (f" | {before:,} s |" if before is not None else " | - |")
        )
    lines.append(
        "| 1-min load average before | "
        + " | ".join(str(r["load_average_1min_before"]) for r in runs)
        + " | 5-9 |"
    )
    lines += [
        "",
        "The last column is the 360-day backfill measured before this benchmark, with the code "
        "of e6d025b (daily reports rebuilt every mart from all earlier events for each report).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or None)
