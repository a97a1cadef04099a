"""This checkout's ingest against an earlier revision's, loads alternated in one run.

On a shared machine a single timing says little: other work comes and goes. So the same
1M-record day (benchmarks/ingest_bench.py `write_events`, vendor paths and aliases on) is loaded
into a fresh warehouse by each side in turn, each load in its own process, and both the wall
and the CPU seconds (user + system of that process, all DuckDB threads) are kept; the ratio of
the medians is the figure to quote, with the load average it was measured under.
`--kind range` loads a backfill instead: the demo generator's first `--days` arrival days
(20,000 users, as benchmarks/ingest_range_bench.py) with one `load_range`, and compares every
ingest table of the two sides' last warehouses row for row.

    python -m benchmarks.ingest_compare REVISION [--runs 3] [--kind plain|mixpanel|range]
                                        [--days 90]

prints the comparison as JSON (progress on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.ingest_bench import (
    ALIASES,
    DAY,
    ONE_LOAD,
    RECORDS,
    write_events,
    write_mixpanel_events,
)
from benchmarks.ingest_range_bench import END, USERS, tables_equal
from benchmarks.revisions import checkout, run_script
from pipelines.demo import generate
from pipelines.landing import landing_dates

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare against, e.g. main~3")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kind", choices=("plain", "mixpanel", "range"), default="plain")
    parser.add_argument("--days", type=int, default=90, help="arrival days of --kind range")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = compare(args.revision, args.runs, args.kind, Path(scratch), args.days)
        print(json.dumps(figures, indent=2))


def compare(revision: str, runs: int, kind: str, scratch: Path, days: int = 90) -> dict:
    """Alternate `runs` loads of each side; medians, their ratios and the load averages (and
    for a range, whether the two sides' last warehouses hold the same ingest tables)."""
    baseline = checkout(revision, scratch)
    landing = scratch / "landing" / "events"
    if kind == "range":
        records = generate(scratch, days=days, users=USERS, seed=7, end=END).records
        arrival_days = landing_dates(landing, today=END)
    else:
        records = RECORDS
        arrival_days = [DAY if kind == "plain" else DAY + dt.timedelta(days=1)]
        write = write_events if kind == "plain" else write_mixpanel_events
        write(landing / f"date={arrival_days[0]}" / "events.jsonl", RECORDS)
    sides = {"baseline": baseline, "this": ROOT}
    loads: dict[str, list[dict]] = {side: [] for side in sides}
    load_before = os.getloadavg()
    for run in range(runs):
        for side, code in sides.items():
            db = scratch / f"{side}-{run}.duckdb"
            loads[side].append(_one_load(code, landing, arrival_days, db))
            if run < runs - 1:
                db.unlink()
            print(f"[ingest_compare] {side} run {run + 1}: {loads[side][-1]}", file=sys.stderr)
    median = {
        side: {m: round(statistics.median(x[m] for x in xs), 2) for m in ("wall", "cpu")}
        for side, xs in loads.items()
    }
    last = [scratch / f"{side}-{runs - 1}.duckdb" for side in sides]
    return {
        "revision": revision,
        "kind": kind,
        "records": records,
        "arrival_days": len(arrival_days),
        "runs": runs,
        "median": median,
        "cpu_ratio": round(median["baseline"]["cpu"] / median["this"]["cpu"], 2),
        "wall_ratio": round(median["baseline"]["wall"] / median["this"]["wall"], 2),
        "same_counts": all(
            (a["loaded"], a["quarantined"]) == (b["loaded"], b["quarantined"])
            for a, b in zip(loads["baseline"], loads["this"], strict=True)
        ),
        "tables_identical": tables_equal(*last),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "loads": loads,
    }


def _one_load(checkout: Path, landing: Path, days: list[dt.date], db: Path) -> dict:
    arrival_days = ",".join(day.isoformat() for day in days)
    return run_script(checkout, ONE_LOAD, str(landing), str(db), arrival_days, json.dumps(ALIASES))


if __name__ == "__main__":
    main()
