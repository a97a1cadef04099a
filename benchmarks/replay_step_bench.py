"""What one step of a backfill's report replay costs (issue 14), at the end of a 60-day and of
a 360-day history: CPU seconds per report day, split into its parts (the replay of the day's
events, each mart's update or rebuild, the anomaly rows as of the day, the report itself).

The replay (`pipelines/as_of.py`) walks the report days oldest first. Here it jumps to a few
days before the history's end in one step (not timed), then times the last `STEPS` days one by
one, as a backfill would walk them. Each part is timed by wrapping the functions
`pipelines.as_of` calls, so the same file times any version of that module:

    PYTHONPATH=<checkout> python benchmarks/replay_step_bench.py HOME [HOME ...] [--json OUT]

With `--baseline REV` each home is timed by that revision's code too (`git archive`, in a
process of its own), alternately with this one, `--rounds` times:

    python -m benchmarks.replay_step_bench HOME [HOME ...] --baseline REV [--rounds 2]

Without arguments it runs on the cached demo histories of `daily_run_bench` (copied to a
scratch folder, never written) against DEFAULT_BASELINE and writes
`benchmarks/results/replay_step_bench.md` and `.json`. The machine is shared: compare CPU
seconds, and read the load average beside each figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pipelines.as_of as as_of_module
from assets.reports import build as report_build
from benchmarks.revisions import checkout, describe, run_script
from pipelines import warehouse
from pipelines.settings import load_settings

RESULTS = Path(__file__).parent / "results"
PROJECT_DIR = Path(__file__).resolve().parent.parent
CACHE = Path(
    os.environ.get("EVENTPULSE_BENCH_CACHE", "/work/benchcache/eventpulse-daily-run-bench")
)
HISTORIES = ("history-60d-5000u-seed7", "history-360d-20000u-seed7")
STEPS = 5
# Main before the replay's set-up ran once per connection and the charts reused their figures.
DEFAULT_BASELINE = "9f7c357"
# Runs in a revision's own files: `measure` of its copy of this module.
MEASURE = """
import json, sys
from pathlib import Path
from benchmarks.replay_step_bench import measure
home, steps, at_start, threads = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
print(json.dumps(measure(home, steps, at_start, threads), default=str))
"""


def main() -> None:
    """`make bench`: the cached histories against DEFAULT_BASELINE, to benchmarks/results/."""
    with tempfile.TemporaryDirectory() as scratch:
        homes = []
        for name in HISTORIES:
            home = Path(scratch) / name
            home.mkdir()
            shutil.copy(CACHE / name / "warehouse.duckdb", home / "warehouse.duckdb")
            homes.append(home)
        runs = compare(homes, STEPS, DEFAULT_BASELINE, rounds=1, scratch=Path(scratch))
    _write_comparison(runs, DEFAULT_BASELINE)


def command_line() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("homes", nargs="*", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument(
        "--at-start", action="store_true", help="time the first days of the history instead"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="DuckDB threads of the reader (a backfill's report process has its share of the "
        "CPUs: 1 on 2 CPUs; the replay takes the reader's)",
    )
    parser.add_argument("--baseline", help="also time this revision, alternately")
    parser.add_argument("--rounds", type=int, default=2, help="with --baseline")
    args = parser.parse_args()
    if not args.homes:
        main()
        return
    if args.baseline:
        with tempfile.TemporaryDirectory() as scratch:
            runs = compare(
                args.homes, args.steps, args.baseline, args.rounds, Path(scratch), args.at_start
            )
        for run in runs:
            print(json.dumps(run, default=str))
        return
    figures = [measure(home, args.steps, args.at_start, args.threads) for home in args.homes]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    for figure in figures:
        print(json.dumps(figure, default=str))


def measure(
    home: Path, steps: int, at_start: bool = False, threads: int | None = None
) -> dict[str, Any]:
    """CPU seconds of each of the last `steps` replay steps of `home`'s history (or of the
    first ones after its first day), by part; `threads`: the reader's DuckDB threads."""
    settings = load_settings(home=home)
    parts: dict[str, float] = defaultdict(float)
    restore = _wrap_parts(parts)
    try:
        with warehouse.reader(home) as conn:
            if threads:
                conn.execute("set threads = $threads", {"threads": threads})
            ((first, last),) = conn.execute(
                "select min(event_date), max(event_date) from events"
            ).fetchall()
            days = [last - dt.timedelta(days=n) for n in range(steps, -1, -1)]
            if at_start:
                days = [first + dt.timedelta(days=n) for n in range(steps + 1)]
            report_home = Path(tempfile.mkdtemp(prefix="replay-step-"))
            report_settings = load_settings(home=report_home)
            try:
                with as_of_module.as_of_warehouses(conn, settings, days) as as_of:
                    as_of(days[0])  # the jump to the end of the history: not timed
                    parts.clear()
                    load = os.getloadavg()[0]
                    cpu, wall = time.process_time(), time.perf_counter()
                    for day in days[1:]:
                        replayed = as_of(day)
                        started = time.process_time()
                        period = report_build.Period("daily", day.isoformat(), day, day)
                        report_build._build_report(replayed, report_settings, period)
                        parts["report"] += time.process_time() - started
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            finally:
                shutil.rmtree(report_home, ignore_errors=True)
    finally:
        restore()
    return {
        "home": str(home),
        "days": f"{days[1]} to {days[-1]}",
        "steps": steps,
        "threads": threads,
        "cpu_s_per_step": cpu / steps,
        "wall_s_per_step": wall / steps,
        "load": load,
        "parts_cpu_s_per_step": {name: s / steps for name, s in sorted(parts.items())},
    }


def compare(
    homes: list[Path],
    steps: int,
    baseline: str,
    rounds: int,
    scratch: Path,
    at_start: bool = False,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Each home timed by `baseline`'s code and by this checkout's, alternately, `rounds`
    times, each in a process of its own (one DuckDB thread: a backfill's report process)."""
    code = {describe(baseline): checkout(baseline, scratch), "this": PROJECT_DIR}
    runs = []
    for home in homes:
        for round_no in range(1, rounds + 1):
            for revision, folder in code.items():
                args = (str(home), str(steps), "1" if at_start else "0", str(threads))
                figure = run_script(folder, MEASURE, *args)
                runs.append(figure | {"revision": revision, "round": round_no})
    return runs


def _wrap_parts(parts: dict[str, float]) -> Callable[[], None]:
    """Time every mart function and SQL file `pipelines.as_of` calls, under its name."""
    originals = {}
    for name, value in vars(as_of_module).items():
        module = getattr(value, "__module__", "") or ""
        if callable(value) and (module.startswith("assets.") or name == "run_sql_file"):
            originals[name] = value
            setattr(as_of_module, name, _timed(value, name, parts))
    return lambda: [setattr(as_of_module, n, f) for n, f in originals.items()] and None


def _timed(function: Callable, name: str, parts: dict[str, float]) -> Callable:
    def timed(*args: Any, **kwargs: Any) -> Any:
        label = f"{name}:{args[1]}" if name == "run_sql_file" else name
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            parts[label] += time.process_time() - started

    return timed


def _write_comparison(runs: list[dict[str, Any]], baseline: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_step_bench.json").write_text(json.dumps(runs, indent=1, default=str) + "\n")
    lines = [
        "# One step of the report replay (issue 14)",
        "",
        f"CPU seconds per report day over the last {STEPS} days of each cached demo history (the "
        "replay of the day, the marts, the anomaly rows, the report), the reader on one DuckDB "
        f"thread as in a backfill's report process; {baseline} and this checkout alternately, "
        "each in a process of its own. A shared 2-core machine: compare CPU seconds. Command: "
        "`python -m benchmarks.replay_step_bench`.",
        "",
        "| history | days | revision | CPU s / step | report part | wall s / step | load "
        "| largest parts (CPU s / step) |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        parts = run["parts_cpu_s_per_step"]
        top = sorted(parts.items(), key=lambda kv: -kv[1])[:5]
        lines.append(
            f"| {Path(run['home']).name} | {run['days']} | {run['revision']} "
            f"| {run['cpu_s_per_step']:.2f} | {parts.get('report', 0.0):.2f} "
            f"| {run['wall_s_per_step']:.2f} | {run['load']:.1f} "
            f"| {', '.join(f'{name} {s:.2f}' for name, s in top)} |"
        )
    (RESULTS / "replay_step_bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    command_line()
