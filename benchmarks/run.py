"""`make bench`: run every benchmark; each writes benchmarks/results/<name>.md (quoted in README)."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = [
    "ingest_bench",
    "ingest_range_bench",
    "ingest_profile",
    "generate_bench",
    "marts_bench",
    "dimensions_compare",
    "dimensions_profile",
    "funnel_bench",
    "anomaly_bench",
    "anomaly_tradeoffs",
    "nab_variants",
    "anomaly_daily_bench",
    "rag_bench",
    "ask_bench",
    "report_bench",
    "replay_step_bench",
    "report_backfill_bench",
    "daily_run_bench",
    "rerun_bench",
    "backfill_bench",
    "corpus_bench",
    "publish_bench",
]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            print(f"[bench] {name}: not written yet, skipped")
            continue
        started = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        module.main()
        print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
