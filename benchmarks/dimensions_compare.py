"""daily_metrics with two and four dimensions: this checkout against an earlier revision's,
builds alternated in one run (issue 17: four dimensions in <= 1.5x the two-dimension time).

The marts benchmark's synthetic events (`benchmarks/synthetic_events.py`, with the country and
`properties.app_version` of `benchmarks/marts_bench.py`) are generated once, with `sessions` and
`users`. Then, round after round, each side rebuilds `daily_metrics` with the two default
dimensions and with four (platform, channel, country, properties.app_version) on that same
warehouse, each build in its own process of that checkout: `build_daily_metrics`, which also
groups every event into `dimension_user_days` and counts `dimension_values`, then a checkpoint.
CPU seconds (user + system, every DuckDB thread) are the figure to compare on a shared machine;
the medians and their ratios are printed with the load averages, and each build's
daily_metrics digest, so the two sides are seen to agree.

    python -m benchmarks.dimensions_compare [REVISION] [--events 10000000] [--rounds 3]

(REVISION defaults to `main`; `make bench` runs it so) prints the comparison as JSON and
writes it to benchmarks/results/dimensions_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.marts_bench import ADD_DIMENSIONS, FOUR_DIMENSIONS
from benchmarks.revisions import checkout, run_script
from benchmarks.synthetic_events import generate_events
from pipelines import warehouse
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "dimensions_compare.json"
# Run inside the checkout under test: only its own marts code is imported.
ONE_BUILD = """
import json, resource, sys, time
from pathlib import Path
from assets.marts.metrics import build_daily_metrics
from pipelines import warehouse
from pipelines.settings import Settings
db, dimensions = Path(sys.argv[1]), tuple(sys.argv[2].split(","))
conn = warehouse.connect(db)
settings = Settings(home=Path("."), dimensions=dimensions)
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
rows = build_daily_metrics(conn, settings)
conn.execute("checkpoint")
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
digest = conn.execute(
    "select hash(list(d order by d)) from (select d::varchar as d from daily_metrics as d)"
).fetchall()[0][0]
conn.close()
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "rows": rows, "digest": str(digest)}))
"""
# What `make bench` compares against, as the docstring says: the merged main.
BASELINE = "main"
VARIANTS = {"two": Settings(home=Path(".")).dimensions, "four": FOUR_DIMENSIONS}


def main(argv: list[str] | None = None) -> None:
    """`argv` without the program name; none (as benchmarks/run.py calls it) for the defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "revision",
        nargs="?",
        default=BASELINE,
        help=f"the git revision to compare against (default {BASELINE})",
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="eventpulse-dimensions-") as scratch:
        result = compare(args.revision, args.events, args.rounds, Path(scratch))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def compare(revision: str, n_events: int, rounds: int, scratch: Path) -> dict:
    """Alternate the builds of both sides for `rounds` rounds; medians, ratios, loads."""
    baseline = checkout(revision, scratch)
    db = scratch / "events.duckdb"
    prepare(db, n_events)
    sides = {"baseline": baseline, "this": ROOT}
    builds: dict[str, dict[str, list[dict]]] = {s: {v: [] for v in VARIANTS} for s in sides}
    load_before = os.getloadavg()
    for round_no in range(rounds):
        for side, code in sides.items():
            for variant, dimensions in VARIANTS.items():
                build = _one_build(code, db, dimensions)
                builds[side][variant].append(build)
                print(
                    f"[dimensions_compare] round {round_no + 1} {side} {variant}: {build}",
                    file=sys.stderr,
                )
    medians = {
        side: {v: statistics.median(b["cpu"] for b in runs) for v, runs in variants.items()}
        for side, variants in builds.items()
    }
    return {
        "revision": revision,
        "events": n_events,
        "rounds": rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "median_cpu_seconds": {
            s: {v: round(c, 2) for v, c in m.items()} for s, m in medians.items()
        },
        "four_over_two": {s: round(m["four"] / m["two"], 2) for s, m in medians.items()},
        "four_this_over_two_baseline": round(
            medians["this"]["four"] / medians["baseline"]["two"], 2
        ),
        "this_over_baseline": {
            v: round(medians["this"][v] / medians["baseline"][v], 2) for v in VARIANTS
        },
        "same_rows": all(
            len({b["digest"] for side in builds for b in builds[side][v]}) == 1 for v in VARIANTS
        ),
        "builds": builds,
    }


def prepare(db: Path, n_events: int) -> None:
    """The synthetic events with their country and app version, sessions and users."""
    from assets.marts.sessions_users import build_sessions, build_users

    conn = warehouse.connect(db)
    try:
        settings = Settings(home=Path("."))
        generate_events(conn, n_events, n_events // 20)
        build_sessions(conn, settings)
        build_users(conn, settings)
        conn.execute(ADD_DIMENSIONS)
        conn.execute("checkpoint")
    finally:
        conn.close()


def _one_build(checkout: Path, db: Path, dimensions: tuple[str, ...]) -> dict:
    return run_script(checkout, ONE_BUILD, str(db), ",".join(dimensions))


if __name__ == "__main__":
    main(sys.argv[1:])
