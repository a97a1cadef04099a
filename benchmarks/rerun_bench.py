"""Benchmark: `eventpulse run` again over a home where nothing changed (a re-run, a retried
schedule), this checkout against a baseline revision that reads every day and writes every
report again.

The demo's home (`make demo`: 90 days, 5,000 users, seed 7) is generated and copied for each
side, which runs `eventpulse run` over every day once; then, alternately, each side's
`eventpulse run` again over its home is timed (wall, and the CPU seconds of the command and its
children). Both must leave the same warehouse (every table but the bookkeeping ones, row for
row) and the same report files, byte for byte: the kept reports are the ones writing them again
gives.

Run: `.venv/bin/python -m benchmarks.rerun_bench [REVISION]` (part of `make bench`; default
baseline 7cf30ce, the last revision without the skip). Writes
`benchmarks/results/rerun_bench.md` and `.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb

from assets.reports.unchanged import BOOKKEEPING_TABLES
from benchmarks.revisions import checkout, describe, timed_process
from pipelines.demo import generate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
BASELINE = "7cf30ce"
ROUNDS = 2


def main(revision: str = BASELINE) -> None:
    with tempfile.TemporaryDirectory(prefix="rerun-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        codes = {"baseline": checkout(revision, scratch), "this": ROOT}
        generated = scratch / "generated"
        summary = generate(generated, days=90, users=5000, seed=7)
        print(f"[rerun_bench] {summary}", flush=True)
        homes = {side: scratch / side for side in codes}
        for side, code in codes.items():
            # Its own copy, run once in place: a copy's files are new to it (their change
            # times), so the first run of any copy reads everything.
            shutil.copytree(generated, homes[side])
            print(f"[rerun_bench] {side}: first run ...", flush=True)
            _run(code, homes[side])
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
        load_before = os.getloadavg()
        for _ in range(ROUNDS):
            for side, code in codes.items():
                runs[side].append(_run(code, homes[side]))
                print(f"[rerun_bench] {side}: {runs[side][-1]}", flush=True)
        load_after = os.getloadavg()
        same_tables = _tables(homes["baseline"]) == _tables(homes["this"])
        same_reports = _reports(homes["baseline"]) == _reports(homes["this"])
    result = {
        "baseline": describe(revision),
        "this": describe("HEAD"),
        "runs": runs,
        "median": {side: _median(side_runs) for side, side_runs in runs.items()},
        "same_tables": same_tables,
        "same_report_files": same_reports,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "rerun_bench.json").write_text(json.dumps(result, indent=1))
    (RESULTS_DIR / "rerun_bench.md").write_text(_markdown(result))
    print(_markdown(result))


def _run(code: Path, home: Path) -> dict[str, float]:
    """`eventpulse run` over every day of `home` with the project at `code`: wall and CPU s."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "EVENTPULSE_CONFIG"},
        "PYTHONPATH": str(code),
        "EVENTPULSE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    _, wall, cpu = timed_process([sys.executable, "-m", "pipelines.cli", "run"], code, env)
    return {"wall": round(wall, 1), "cpu": round(cpu, 1)}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 1) for key in ("wall", "cpu")}


def _tables(home: Path) -> dict[str, list[tuple]]:
    """Every table but the bookkeeping ones and the skip's own record, sorted."""
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        names = [
            name
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where schema_name = 'main'"
            ).fetchall()
            if name not in BOOKKEEPING_TABLES | {"load_fingerprints"}
        ]
        return {
            name: conn.execute(f'select * from "{name}" order by all').fetchall() for name in names
        }
    finally:
        conn.close()


def _reports(home: Path) -> dict[str, bytes]:
    folder = home / "reports"
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _markdown(result: dict) -> str:
    base, this = result["median"]["baseline"], result["median"]["this"]
    rows = "\n".join(
        f"| {side} | {run['wall']} | {run['cpu']} |"
        for side, side_runs in result["runs"].items()
        for run in side_runs
    )
    return f"""# Re-run over nothing new

Written by `python -m benchmarks.rerun_bench` (part of `make bench`; module docstring). The
demo's home (90 days, 5,000 users), run once by each side; then `eventpulse run` again over
every day, alternately: baseline {result["baseline"]} (reads every day, writes every report)
and this checkout {result["this"]} (skips unchanged days, keeps unchanged reports).

| side | wall s | CPU s |
|---|---:|---:|
{rows}

Medians: baseline {base["wall"]} s wall / {base["cpu"]} CPU s; this {this["wall"]} s /
{this["cpu"]} CPU s: **{base["wall"] / this["wall"]:.1f}x less wall, {base["cpu"] / this["cpu"]:.1f}x
less CPU**. Same tables (all but bookkeeping): {result["same_tables"]}; same report files, byte
for byte: {result["same_report_files"]}. Load average before {result["load_average_before"]},
after {result["load_average_after"]}.
"""


if __name__ == "__main__":
    main(*sys.argv[1:2])
