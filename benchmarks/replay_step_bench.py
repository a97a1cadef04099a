"""What one step of a backfill's report replay costs (issue 14), at the end of a 60-day and of
a 360-day history: CPU seconds per report day, split into its parts (the replay of the day's
events, each mart's update or rebuild, the anomaly rows as of the day, the report itself).

The replay (`pipelines/as_of.py`) walks the report days oldest first. Here it jumps to a few
days before the history's end in one step (not timed), then times the last `STEPS` days one by
one, as a backfill would walk them. Each part is timed by wrapping the functions
`pipelines.as_of` calls, so the same file times any version of that module:

    PYTHONPATH=<checkout> python benchmarks/replay_step_bench.py HOME [HOME ...] [--json OUT]

Without arguments it runs on the cached demo histories of `daily_run_bench` (copied to a
scratch folder, never written) and writes `benchmarks/results/replay_step_bench.md`. The
machine is shared: compare CPU seconds, and time the code before in the same run.
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
from pipelines import warehouse
from pipelines.settings import load_settings

RESULTS = Path(__file__).parent / "results"
CACHE = Path(
    os.environ.get("EVENTPULSE_BENCH_CACHE", "/work/benchcache/eventpulse-daily-run-bench")
)
HISTORIES = ("history-60d-5000u-seed7", "history-360d-20000u-seed7")
STEPS = 5


def main() -> None:
    """`make bench`: the cached histories, written to benchmarks/results/."""
    _write_results(_measure_cached(STEPS))


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
    args = parser.parse_args()
    if not args.homes:
        main()
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


def _measure_cached(steps: int) -> list[dict[str, Any]]:
    figures = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in HISTORIES:
            home = Path(scratch) / name
            home.mkdir()
            shutil.copy(CACHE / name / "warehouse.duckdb", home / "warehouse.duckdb")
            figures.append(measure(home, steps))
            if name == HISTORIES[-1]:
                figures.append(measure(home, steps, at_start=True))
            shutil.rmtree(home)
    return figures


def _write_results(figures: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    lines = [
        "# One step of the report replay",
        "",
        f"CPU seconds per report day over the last {STEPS} days of each cached demo history, "
        "and over the first days of the 360-day one (the replay of the day, the marts, the "
        "anomaly rows, the report); a shared 2-core machine, so compare CPU seconds.",
        "",
        "| history | days | CPU s / step | wall s / step | load | largest parts (CPU s / step) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for figure in figures:
        top = sorted(figure["parts_cpu_s_per_step"].items(), key=lambda kv: -kv[1])[:6]
        parts = ", ".join(f"{name} {s:.2f}" for name, s in top)
        lines.append(
            f"| {Path(figure['home']).name} | {figure['days']} | {figure['cpu_s_per_step']:.2f} | "
            f"{figure['wall_s_per_step']:.2f} | {figure['load']:.1f} | {parts} |"
        )
    (RESULTS / "replay_step_bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    command_line()
