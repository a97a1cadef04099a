"""The daily reports step of a backfill (issue 14): every day's report of a cached demo history,
written as the `daily_report` asset writes them in a backfill (two processes, each replaying
the history for its share of the days), by an earlier revision and by this one in the same run.

Timed: wall seconds and the CPU seconds of the writing processes (the caller and its pool).
The two revisions' reports are then compared file by file (Markdown, HTML, every figure):
a pure speed-up writes the same bytes.

    .venv/bin/python -m benchmarks.report_backfill_bench [HISTORY ...] [--baseline REV]

HISTORY: a folder name under $EVENTPULSE_BENCH_CACHE (default
/work/benchcache/eventpulse-daily-run-bench; only its warehouse.duckdb is read, copied to a
scratch folder). Writes `benchmarks/results/report_backfill_bench.md` and `.json`. The machine
is shared: read the load average beside each figure, and the CPU seconds.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.daily_run_bench import PROJECT_DIR, write_run_results
from benchmarks.revisions import checkout, describe, timed_process

CACHE = Path(
    os.environ.get("EVENTPULSE_BENCH_CACHE", "/work/benchcache/eventpulse-daily-run-bench")
)
HISTORIES = ("history-360d-20000u-seed7",)
PROCESSES = 2
DEFAULT_BASELINE = "9f7c357"  # main before the replay set up once and the charts reused figures

# Runs in the revision's own files: every daily report of the home's history, as the asset
# writes a backfill's (its function returned a generator of stretches before, a list now).
WRITE_ALL = """
import datetime as dt, sys
from pathlib import Path
from assets.reports.build import build_reports_in_processes
from pipelines import warehouse
from pipelines.settings import load_settings

home, processes = Path(sys.argv[1]), int(sys.argv[2])
settings = load_settings(home=home)
with warehouse.reader(home) as conn:
    ((first, last),) = conn.execute(
        "select min(event_date), max(event_date) from events"
    ).fetchall()
days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
written = build_reports_in_processes(settings, "daily", days, processes)
print(sum(len(item) if isinstance(item, list) else 1 for item in written))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("histories", nargs="*", default=list(HISTORIES))
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="revision timed beside")
    args = parser.parse_args(argv or [])
    runs = []
    with tempfile.TemporaryDirectory(prefix="eventpulse-report-backfill-") as scratch:
        baseline = checkout(args.baseline, Path(scratch))
        for history in args.histories:
            homes = {}
            for revision, code in ((describe(args.baseline), baseline), ("this", PROJECT_DIR)):
                home = Path(scratch) / f"{revision}-{history}"
                home.mkdir()
                shutil.copy(CACHE / history / "warehouse.duckdb", home / "warehouse.duckdb")
                runs.append(write_all(home, code) | {"history": history, "revision": revision})
                homes[revision] = home
            differ = differing_files(*(home / "reports" for home in homes.values()))
            runs[-1]["files_differing_from_baseline"] = differ
    write_run_results("report_backfill", runs, markdown)


def write_all(home: Path, code: Path) -> dict:
    """Every daily report of `home`'s history written by the project's files in `code`."""
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]
    done, wall, cpu = timed_process(
        [sys.executable, "-c", WRITE_ALL, str(home), str(PROCESSES)], code, env
    )
    return {
        "reports": int(done.stdout.split()[-1]),
        "processes": PROCESSES,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load_average_1min_before": round(load, 1),
        "load_average_1min_after": round(os.getloadavg()[0], 1),
    }


def differing_files(left: Path, right: Path) -> list[str]:
    """Paths under `left` and `right` that are missing on one side or differ in content."""
    names = {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
    names |= {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    return sorted(
        str(name)
        for name in names
        if not ((left / name).is_file() and (right / name).is_file())
        or not filecmp.cmp(left / name, right / name, shallow=False)
    )


def markdown(runs: list[dict], machine: dict) -> str:
    lines = [
        "# The daily reports of a backfill (issue 14)",
        "",
        f"DuckDB {machine['duckdb']}, {machine['cpus']} CPUs, Python {machine['python']}, a "
        "machine shared with other work (noisy: read the load averages and the CPU seconds). "
        f"Every day's daily report of a cached demo history written in {PROCESSES} processes "
        "as the `daily_report` asset writes a backfill's, by an earlier revision and then by "
        "this one, in the same run. Command: `.venv/bin/python -m "
        "benchmarks.report_backfill_bench`.",
        "",
        "| history | revision | reports | wall s | CPU s | CPU s / report | load before / after "
        "| files differing from the baseline's |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for run in runs:
        differ = run.get("files_differing_from_baseline")
        lines.append(
            f"| {run['history']} | {run['revision']} | {run['reports']} | {run['wall_s']:,.0f} "
            f"| {run['cpu_s']:,.0f} | {run['cpu_s'] / max(1, run['reports']):.2f} "
            f"| {run['load_average_1min_before']} / {run['load_average_1min_after']} "
            f"| {'-' if differ is None else len(differ)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:])
