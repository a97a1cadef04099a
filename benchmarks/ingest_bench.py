"""Ingest throughput: 1M JSON-lines records through the full validating ingest, side by side
with a plain DuckDB `read_json` of the same file (the baseline: parsing without validation,
dedup or quarantine)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from assets.ingest.load import load_partition
from pipelines import warehouse

RESULTS = Path(__file__).parent / "results"
RECORDS = 1_000_000
DAY = dt.date(2026, 3, 10)


def write_events(path: Path, n: int, seed: int = 1) -> None:
    """Realistic records: mixed aliases off, ids present, some properties, ~1% duplicates."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50_000, n)
    seconds = np.sort(rng.integers(0, 86_400, n))
    events = np.array(["page_view", "signup", "add_to_cart", "purchase", "search"])[
        rng.choice(5, n, p=[0.6, 0.1, 0.15, 0.05, 0.1])
    ]
    platforms = np.array(["web", "ios", "android"])[rng.integers(0, 3, n)]
    ids = np.arange(n)
    ids[rng.random(n) < 0.01] = 0  # re-sent copies of one event id
    base = dt.datetime(2026, 3, 10)
    with open(path, "w") as out:
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            lines = [
                json.dumps(
                    {
                        "event_id": f"e{ids[i]}",
                        "user_id": f"u{users[i]}",
                        "event": events[i],
                        "timestamp": (base + dt.timedelta(seconds=int(seconds[i]))).isoformat()
                        + "Z",
                        "properties": {"platform": platforms[i], "revenue": 20.0}
                        if events[i] == "purchase"
                        else {"platform": platforms[i]},
                    }
                )
                for i in range(start, stop)
            ]
            out.write("\n".join(lines) + "\n")


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        folder = home / "landing" / "events" / f"date={DAY}"
        folder.mkdir(parents=True)
        path = folder / "events.jsonl"
        write_events(path, RECORDS)
        size_mb = path.stat().st_size / 1e6

        conn = warehouse.connect(home / "baseline.duckdb")
        started = time.perf_counter()
        conn.execute("create table plain as select * from read_json($p)", {"p": str(path)})
        baseline_s = time.perf_counter() - started
        conn.close()

        conn = warehouse.connect(home / "warehouse.duckdb")
        started = time.perf_counter()
        result = load_partition(conn, home / "landing" / "events", DAY)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        load_partition(conn, home / "landing" / "events", DAY)
        reload_s = time.perf_counter() - started
        conn.close()

    figures = {
        "records": RECORDS,
        "file_mb": round(size_mb, 1),
        "ingest_seconds": round(ingest_s, 2),
        "ingest_records_per_s": round(RECORDS / ingest_s),
        "reload_seconds": round(reload_s, 2),
        "baseline_read_json_seconds": round(baseline_s, 2),
        "baseline_records_per_s": round(RECORDS / baseline_s),
        "ingest_vs_baseline_time_ratio": round(ingest_s / baseline_s, 2),
        "loaded": result.loaded,
        "quarantined": result.quarantined,
    }
    (RESULTS / "ingest_bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "ingest_bench.md").write_text(
        "# Ingest benchmark\n\n"
        f"{RECORDS:,} JSON-lines records ({size_mb:.0f} MB), one arrival day, 2-core machine.\n\n"
        "| what | seconds | records/s |\n|---|---|---|\n"
        f"| eventpulse ingest (validate, dedup, quarantine, atomic replace) | {ingest_s:.2f} | "
        f"{RECORDS / ingest_s:,.0f} |\n"
        f"| re-load of the same day (replace) | {reload_s:.2f} | {RECORDS / reload_s:,.0f} |\n"
        f"| baseline: plain `read_json` into a table | {baseline_s:.2f} | "
        f"{RECORDS / baseline_s:,.0f} |\n\n"
        f"Ingest takes {ingest_s / baseline_s:.2f}x the baseline's time. "
        f"Loaded {result.loaded:,}, quarantined {result.quarantined:,} (duplicates).\n"
    )
    print((RESULTS / "ingest_bench.md").read_text())


if __name__ == "__main__":
    main()
