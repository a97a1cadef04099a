"""Daily anomaly scoring cost against history: a daily run at 60 and at 360 days of history.

`python -m benchmarks.anomaly_daily_bench` (part of `make bench`) writes
benchmarks/results/anomaly_daily_bench.md and .json.

For each history length N: the independent synthetic generator of `anomaly_bench` (3
platforms x 5 channels, growth, a weekly pattern, incidents) gives N + DAILY_RUNS days of
`daily_metrics` in a DuckDB file. The first run scores the first N days (everything, as a new
install does); then each of DAILY_RUNS daily runs adds one day and runs what the `anomalies`
asset runs: `score_changed_days` (find the changed days, read their inputs and the stored
rows, score) and `write_anomalies` (rows, incidents, inputs, state in one transaction). The
table gives the median daily run; the acceptance line is at most 1.3x between 60 and 360 days.

`python -m benchmarks.anomaly_daily_bench --warehouse PATH` times only the first run over the
`daily_metrics` of an existing warehouse (a demo history) and prints it, with the rows digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import LOOKBACK_DAYS, score_changed_days
from assets.anomalies.scoring import TRAIN_DAYS
from benchmarks.anomaly_bench import synthetic_metrics
from pipelines.settings import AnomalySettings

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
HISTORIES = (60, 360)
DAILY_RUNS = 5
SEED = 3
MAX_RATIO = 1.3


def main() -> None:
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {"histories": {str(n): run(n) for n in HISTORIES}}
    results["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    short, long = (results["histories"][str(n)]["daily_median_s"] for n in HISTORIES)
    results["ratio"] = round(long / short, 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "anomaly_daily_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "anomaly_daily_bench.md").write_text(markdown(results))
    print(markdown(results))


def run(history: int) -> dict[str, Any]:
    frame, _ = synthetic_metrics(SEED, days=history + DAILY_RUNS)
    days = sorted(frame["metric_date"].unique())
    settings = AnomalySettings()
    with tempfile.TemporaryDirectory() as folder:
        conn = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        try:
            started, cpu = time.perf_counter(), time.process_time()
            first = _daily_run(conn, frame[frame["metric_date"] <= days[history - 1]], settings)
            first_s, first_cpu = time.perf_counter() - started, time.process_time() - cpu
            timings, cpu_timings, rows = [], [], []
            for day in days[history:]:
                started, cpu = time.perf_counter(), time.process_time()
                scored = _daily_run(conn, frame[frame["metric_date"] <= day], settings)
                timings.append(time.perf_counter() - started)
                cpu_timings.append(time.process_time() - cpu)
                rows.append(scored)
            digest = rows_digest(conn)
        finally:
            conn.close()
    return {
        "series_rows_first_run": first,
        "first_run_s": round(first_s, 2),
        "first_run_cpu_s": round(first_cpu, 2),
        "daily_s": [round(t, 3) for t in timings],
        "daily_median_s": round(statistics.median(timings), 3),
        "daily_cpu_median_s": round(statistics.median(cpu_timings), 3),
        "rows_per_daily_run": rows,
        "rows_digest": digest,
    }


def rows_digest(conn: duckdb.DuckDBPyConnection) -> str:
    """A hash of every row of `anomalies` and `anomaly_incidents`, floats to the last bit: two
    versions of the scorer that give the same digest wrote the same rows."""
    digest = hashlib.sha256()
    for table in ("anomalies", "anomaly_incidents"):
        frame = conn.sql(f"select * from {table} order by all").df()  # names from this code
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _daily_run(conn: duckdb.DuckDBPyConnection, daily: pd.DataFrame, settings: Any) -> int:
    conn.register("frame", daily)
    conn.execute("create or replace table daily_metrics as select * from frame")
    conn.unregister("frame")
    update = score_changed_days(conn, settings)
    write_anomalies(conn, update, settings)
    return len(update.rows)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Daily anomaly scoring against history",
        "",
        "Written by `python -m benchmarks.anomaly_daily_bench` (part of `make bench`); method in",
        "the module docstring. A daily run reads "
        f"{LOOKBACK_DAYS} days of metrics and {TRAIN_DAYS} days of stored rows, whatever the history.",
        "Timings on a shared 2-core machine: noisy; CPU seconds are the steadier figure. The",
        "rows digest hashes every row of `anomalies` and `anomaly_incidents` after the last run:",
        "equal digests, equal rows (to the last bit of every float).",
        "",
        "| history | first run (every day): wall / CPU | daily run, median of "
        f"{DAILY_RUNS}: wall / CPU | daily runs (wall) | rows scored a day | rows digest |",
        "|---:|---:|---:|---|---:|---|",
    ]
    for history, block in results["histories"].items():
        daily = ", ".join(f"{t:.2f}" for t in block["daily_s"])
        lines.append(
            f"| {history} days | {block['first_run_s']:.1f} s / {block['first_run_cpu_s']:.1f} s "
            f"| {block['daily_median_s']:.2f} s / {block['daily_cpu_median_s']:.2f} s "
            f"| {daily} | {block['rows_per_daily_run'][0]} | `{block['rows_digest']}` |"
        )
    verdict = "within" if results["ratio"] <= MAX_RATIO else "over"
    lines += [
        "",
        f"360 days / 60 days: {results['ratio']:.2f}x ({verdict} the {MAX_RATIO}x target). "
        f"1-min load average {results['load_average'][0]} before, {results['load_average'][1]} "
        "after.",
        "",
    ]
    return "\n".join(lines)


def first_run_of(warehouse: Path) -> dict[str, Any]:
    """The first run (every day scored and written) over the `daily_metrics` of an existing
    warehouse, e.g. a demo history, copied into a scratch database: wall and CPU seconds and
    the rows digest. The warehouse is only read."""
    source = duckdb.connect(str(warehouse), read_only=True)
    try:
        daily = source.sql("select * from daily_metrics").df()
    finally:
        source.close()
    with tempfile.TemporaryDirectory() as folder:
        conn = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        try:
            started, cpu = time.perf_counter(), time.process_time()
            rows = _daily_run(conn, daily, AnomalySettings())
            wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
            digest = rows_digest(conn)
        finally:
            conn.close()
    return {
        "rows": rows,
        "first_run_s": round(wall_s, 2),
        "first_run_cpu_s": round(cpu_s, 2),
        "rows_digest": digest,
        "load_average": round(os.getloadavg()[0], 1),
    }


if __name__ == "__main__":
    # `--warehouse PATH`: only the first run over that warehouse's daily_metrics, printed.
    if len(sys.argv) == 3 and sys.argv[1] == "--warehouse":
        print(json.dumps(first_run_of(Path(sys.argv[2]))))
    else:
        main()
