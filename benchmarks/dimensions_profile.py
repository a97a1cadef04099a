"""Where the CPU of a `daily_metrics` build goes, statement by statement, with two and four
dimensions: this checkout and, alternating in the same run, an earlier revision (issue 17).

The events, sessions and users of `benchmarks/dimensions_compare.py` (3M events by default) are
prepared once; each build runs in its own process of its checkout on a fresh copy of that
warehouse: `build_daily_metrics` (the `dimension_user_days` grouping, `dimension_values`, the
sessions' first-event lookup, `daily_metrics`) and a checkpoint, with every SQL statement timed
in CPU seconds (user + system, every DuckDB thread). Statements under 0.02 s are left out. The
medians per statement, side and variant are printed with the load averages and written to
benchmarks/results/dimensions_profile.json.

    python -m benchmarks.dimensions_profile [REVISION] [--events 3000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.dimensions_compare import VARIANTS, prepare
from benchmarks.revisions import checkout, run_script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "dimensions_profile.json"
BASELINE = "main"
# Run inside the checkout under test: its own pipelines.sql is wrapped to time each statement.
ONE_PROFILE = """
import json, resource, sys
from pathlib import Path
import pipelines.sql as sql
from assets.marts.metrics import build_daily_metrics
from pipelines import warehouse
from pipelines.settings import Settings

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

timed = []
def run_sql(conn, text, params=None):
    params = params or {}
    for statement in conn.extract_statements(text):
        wanted = statement.named_parameters
        started = cpu()
        if wanted:
            conn.execute(statement, {name: params[name] for name in wanted})
        else:
            conn.execute(statement)
        lines = [l for l in statement.query.strip().splitlines() if not l.startswith("--")]
        timed.append((lines[0][:70] if lines else "?", cpu() - started))

sql.run_sql = run_sql
db, dimensions = Path(sys.argv[1]), tuple(sys.argv[2].split(","))
conn = warehouse.connect(db)
started = cpu()
build_daily_metrics(conn, Settings(home=Path("."), dimensions=dimensions))
conn.execute("checkpoint")
total = cpu() - started
conn.close()
statements = {}
for name, seconds in timed:
    statements[name] = statements.get(name, 0.0) + seconds
print(json.dumps({"total": total, "statements": statements}))
"""


def main(argv: list[str] | None = None) -> None:
    """`argv` without the program name; none (as benchmarks/run.py calls it) for the defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", default=BASELINE)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="eventpulse-dimensions-profile-") as scratch:
        result = profile(args.revision, args.events, args.rounds, Path(scratch))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def profile(revision: str, n_events: int, rounds: int, scratch: Path) -> dict:
    """Alternate the profiled builds of both sides for `rounds` rounds; medians per statement."""
    sides = {"baseline": checkout(revision, scratch), "this": ROOT}
    prepared = scratch / "events.duckdb"
    prepare(prepared, n_events)
    runs: dict[str, dict[str, list[dict]]] = {s: {v: [] for v in VARIANTS} for s in sides}
    load_before = os.getloadavg()
    for _ in range(rounds):
        for side, code in sides.items():
            for variant, dimensions in VARIANTS.items():
                copy = scratch / "build.duckdb"
                shutil.copy(prepared, copy)
                runs[side][variant].append(_one_profile(code, copy, dimensions))
                copy.unlink()
    return {
        "revision": revision,
        "events": n_events,
        "rounds": rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "median_cpu_seconds": {
            side: {variant: _medians(builds) for variant, builds in variants.items()}
            for side, variants in runs.items()
        },
    }


def _medians(builds: list[dict]) -> dict:
    names = {name for build in builds for name in build["statements"]}
    statements = {
        name: round(statistics.median(b["statements"].get(name, 0.0) for b in builds), 2)
        for name in sorted(names)
    }
    return {
        "total": round(statistics.median(b["total"] for b in builds), 2),
        "statements": {name: s for name, s in statements.items() if s >= 0.02},
    }


def _one_profile(code: Path, db: Path, dimensions: tuple[str, ...]) -> dict:
    return run_script(code, ONE_PROFILE, str(db), ",".join(dimensions))


if __name__ == "__main__":
    main(sys.argv[1:])
