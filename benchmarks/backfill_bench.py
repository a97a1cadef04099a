"""Benchmark: a backfill from scratch, `eventpulse run` over every arrival day of a new home.

Issue 14: backfilling 360 days of history must take at most 5 minutes. The demo generator
writes `--days` arrival folders (the histories of benchmarks/daily_run_bench.py: 60 days x 5,000
users and 360 days x 20,000 users, both ending at about 7,000-8,000 records a day), then one
`eventpulse run` loads them all and writes everything downstream. Timed: the CLI's wall time
and each Dagster step's time from the event log, summed by stage.

Each history is backfilled twice in the same run, on the same generated files: by an earlier
revision (`--baseline`, extracted with `git archive`) and then by this one.

Run: `.venv/bin/python -m benchmarks.backfill_bench [DAYS ...] [--baseline REV]` (part of
`make bench`; the 360-day backfills take the longest of all benchmarks). Writes
`benchmarks/results/backfill_bench.md` and `.json`. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.daily_run_bench import (
    HISTORIES,
    PROJECT_DIR,
    SEED,
    cli,
    run_steps_since,
    write_run_results,
)
from benchmarks.revisions import checkout, describe

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
# Main before the changes measured against it: the 360-day backfill took 519 s there.
DEFAULT_BASELINE = "99cef9a"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", nargs="*", type=int, help="history lengths (default: all)")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="revision timed beside")
    args = parser.parse_args(argv or [])
    runs = []
    with tempfile.TemporaryDirectory(prefix="eventpulse-backfill-") as scratch:
        baseline = checkout(args.baseline, Path(scratch))
        for days, users in HISTORIES:
            if not args.days or days in args.days:
                files = _generate(Path(scratch) / f"generated-{days}d", days, users)
                base = backfill(files, days, users, baseline, Path(scratch) / "baseline")
                runs.append(base | {"revision": describe(args.baseline)})
                this = backfill(files, days, users, PROJECT_DIR, Path(scratch) / "this")
                runs.append(this | {"revision": "this"})
    write_run_results("backfill", runs, markdown)


def _generate(home: Path, days: int, users: int) -> Path:
    """A home with the demo history's files (landing folders, docs), made once for both
    revisions."""
    home.mkdir(parents=True)
    cli(home, "generate", "--days", str(days), "--users", str(users), "--seed", str(SEED))
    return home


def backfill(files: Path, days: int, users: int, code: Path, scratch: Path) -> dict:
    """`eventpulse run` by the project's files in `code` in a copy of the home `files`."""
    home = scratch / f"home-{days}d"
    shutil.rmtree(home, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copytree(files, home)
    load_before = os.getloadavg()[0]
    since = time.time()
    started = time.perf_counter()
    cli(home, "run", code=code)
    seconds = time.perf_counter() - started
    steps = run_steps_since(home / "dagster", since)
    records = _records(home)
    shutil.rmtree(home, ignore_errors=True)
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
        "by one `eventpulse run` in a new home, by an earlier revision and by this one in the "
        "same benchmark run, on the same files; stage times are the sums of their Dagster "
        "steps (the two runs of `eventpulse run` also start processes and publish the "
        "warehouse). Command: `.venv/bin/python -m benchmarks.backfill_bench` (part of "
        "`make bench`).",
        "",
        "| | " + " | ".join(f"{r['history_days']} days, {r['revision']}" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
        "| users / records | "
        + " | ".join(f"{r['users']:,} / {r['records']:,}" for r in runs)
        + " |",
        "| **backfill** (CLI wall time) | "
        + " | ".join(f"**{r['seconds']:,.0f} s**" for r in runs)
        + " |",
    ]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(f"{r['stages'].get(name, 0):,.0f} s" for r in runs) + " |"
        )
    lines.append(
        "| 1-min load average before | "
        + " | ".join(str(r["load_average_1min_before"]) for r in runs)
        + " |"
    )
    stages = ", ".join(f"{name} {s:,} s" for name, s in EARLIER_360["stages"].items())
    lines += [
        "",
        f"Before this benchmark existed, the 360-day backfill took {EARLIER_360['seconds']:,} s "
        f"with the code of e6d025b (load 5-9): {stages}; its daily reports rebuilt every mart "
        "from all earlier events for each report.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
