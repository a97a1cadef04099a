"""Benchmark: the corpus step of a backfill (a year of reports, built from nothing) and of a
one-day run (one new daily report) at two history sizes, this revision beside an earlier one.

Issue 14: the 360-day backfill's corpus step took 1,246 s, and the one-day run's 5.1 s at 60
days of history against 9.9 s at 360; after the reports gave their own day, 92 s of a 470 s
backfill (benchmarks/results/backfill_bench.md). The histories are those of `benchmarks/daily_run_bench.py`
(the demo generator, ~7,500 records a day; prepared there once and cached). Each side (a
revision, extracted with `git archive`, so edits made while this runs are not measured) builds
in its own process, sides alternating, from copies of the history's reports, docs/ and
warehouse; imports are outside the timing, loading the embedder (and torch, for a large build)
inside it, and the texts go to the embedder in the asset's progress slices
(`embed_with_progress`), as in the asset:

1. backfill: `build_corpus` into an empty `lancedb/` from every report but the newest;
2. one-day refresh: then the newest daily report is put back and `build_corpus` runs again
   (at 360 days on the corpus of step 1; at 60 days on the history's corpus, brought to what
   the side's code keeps by one untimed build first). Repeated `--refreshes` times: the
   report is taken out again, an untimed build removes it, and the timed build adds it back.

The wall and CPU seconds (user + system, every thread of the process) and the chunk counts of
each build are kept; quote the CPU seconds and the ratios, with the load average.

    python -m benchmarks.corpus_bench [--baseline REV] [--this REV] [--refreshes 3]

Writes benchmarks/results/corpus_bench.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.daily_run_bench import prepared_history
from benchmarks.revisions import checkout, describe, run_script

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
HISTORIES = ((60, 5000), (360, 20000))
# main before this change (the code of the 470 s backfill).
DEFAULT_BASELINE = "9f7c357"
# Run inside the checkout under test: only its own build_corpus is imported.
ONE_BUILD = """
import json, resource, sys, time
from pathlib import Path
from assets.corpus.store import build_corpus
from pipelines.onnx_embedding import embed_documents
from pipelines.progress import embed_with_progress
from pipelines.settings import Settings
settings = Settings(home=Path(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
stats = build_corpus(settings, embed_fn=embed_with_progress(embed_documents, lambda line: None))
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(json.dumps({"wall": round(wall, 2), "cpu": round(cpu, 2), "added": stats.added,
                  "removed": stats.removed, "total": stats.total,
                  "embed_seconds": round(stats.embed_seconds, 2)}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--this", default="HEAD")
    parser.add_argument("--refreshes", type=int, default=3)
    args = parser.parse_args(argv or [])
    cache = Path(os.environ.get("EVENTPULSE_BENCH_CACHE", tempfile.gettempdir()))
    cache = cache / "eventpulse-daily-run-bench"
    cache.mkdir(parents=True, exist_ok=True)
    # Scratch beside, never inside, the cache: a shared cache may be read-only.
    with tempfile.TemporaryDirectory(prefix="corpus-bench-") as scratch:
        result = compare(cache, Path(scratch), args.baseline, args.this, args.refreshes)
    write_results(result)


def compare(cache: Path, scratch: Path, baseline: str, this: str, refreshes: int) -> dict:
    sides = {"baseline": checkout(baseline, scratch), "this": checkout(this, scratch)}
    revisions = {"baseline": describe(baseline), "this": describe(this)}
    load_before = os.getloadavg()
    histories = {}
    for days, users in HISTORIES:
        history = prepared_history(cache, days, users)
        homes = {side: _home(history, scratch / f"{side}-{days}d") for side in sides}
        runs: dict[str, dict] = {side: {"refresh": []} for side in sides}
        for side, code in sides.items():
            if days == 360:
                shutil.rmtree(homes[side] / "lancedb")  # a backfill's corpus starts empty
            with _newest_report_aside(homes[side]):
                build = _build(code, homes[side])
            if days == 360:
                runs[side]["backfill"] = build
            _log(side, days, "build without the newest report", build)
        for _ in range(refreshes):
            for side, code in sides.items():
                refresh = _build(code, homes[side])
                runs[side]["refresh"].append(refresh)
                _log(side, days, "one-day refresh", refresh)
                with _newest_report_aside(homes[side]):
                    _build(code, homes[side])
        histories[days] = {
            "users": users,
            "reports": len(list((homes["this"] / "reports" / "daily").glob("*.md"))),
            "load_average_1min": round(os.getloadavg()[0], 2),
            **{side: _summary(r) for side, r in runs.items()},
        }
    return {
        "revisions": revisions,
        "refreshes": refreshes,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "histories": histories,
    }


def _home(history: Path, home: Path) -> Path:
    """The corpus's inputs of the history: Markdown reports, docs/, the warehouse, the corpus."""
    for kind in ("daily", "weekly"):
        folder = home / "reports" / kind
        folder.mkdir(parents=True)
        for report in sorted((history / "reports" / kind).glob("*.md")):
            shutil.copy(report, folder / report.name)
    shutil.copytree(history / "docs", home / "docs")
    shutil.copytree(history / "lancedb", home / "lancedb")
    (home / "warehouse.duckdb").symlink_to(history / "warehouse.duckdb")  # read only
    return home


@contextlib.contextmanager
def _newest_report_aside(home: Path) -> Iterator[None]:
    """The newest daily report moved out of reports/ for the duration of the block."""
    report = sorted((home / "reports" / "daily").glob("*.md"))[-1]
    aside = home / report.name
    report.rename(aside)
    try:
        yield
    finally:
        aside.rename(report)


def _build(code: Path, home: Path) -> dict:
    return run_script(code, ONE_BUILD, str(home), cwd=home)


def _summary(runs: dict) -> dict:
    refresh = runs["refresh"]
    summary = {
        "refresh_median": {
            m: round(statistics.median(r[m] for r in refresh), 2)
            for m in ("wall", "cpu", "added", "removed", "total")
        },
        "refreshes": refresh,
    }
    if "backfill" in runs:
        summary["backfill"] = runs["backfill"]
    return summary


def _log(side: str, days: int, what: str, build: dict) -> None:
    print(f"[corpus_bench] {side} {days} days, {what}: {build}", file=sys.stderr, flush=True)


def write_results(result: dict) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    result = {
        "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **result,
    }
    (RESULTS_DIR / "corpus_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS_DIR / "corpus_bench.md").write_text(markdown(result))


def markdown(r: dict) -> str:
    h60, h360 = r["histories"][60], r["histories"][360]
    rev = r["revisions"]
    lines = [
        "# Corpus step: a year's backfill and the one-day refresh",
        "",
        f"Run {r['run_at']} on {r['machine']}; load average {r['load_average_before']} before, "
        f"{r['load_average_after']} after. Command: `python -m benchmarks.corpus_bench` "
        f"(this = {rev['this']}, baseline = {rev['baseline']}, the code before this change). "
        "Each build in its own process, sides alternating; seconds are the `build_corpus` call "
        "(embedder load included), CPU = user + system of every thread.",
        "",
        f"## Backfill: the corpus built from nothing, {h360['reports'] - 1} daily reports "
        "of the 360-day history",
        "",
        "| side | chunks | embedded | wall s | CPU s | embedding s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side in ("baseline", "this"):
        b = h360[side]["backfill"]
        lines.append(
            f"| {side} ({rev[side]}) | {b['total']} | {b['added']} | {b['wall']} | "
            f"{b['cpu']} | {b['embed_seconds']} |"
        )
    ratio = h360["baseline"]["backfill"]["cpu"] / h360["this"]["backfill"]["cpu"]
    lines += [
        "",
        f"CPU: **{ratio:.1f}x less** than the baseline.",
        "",
        f"## One-day refresh: one new daily report (median of {r['refreshes']})",
        "",
        "| side | history | chunks in corpus | embedded | removed | wall s | CPU s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side in ("baseline", "this"):
        for days, h in ((60, h60), (360, h360)):
            m = h[side]["refresh_median"]
            lines.append(
                f"| {side} ({rev[side]}) | {days} days | {m['total']} | {m['added']} | "
                f"{m['removed']} | {m['wall']} | {m['cpu']} |"
            )
    for side in ("baseline", "this"):
        cpu60 = h60[side]["refresh_median"]["cpu"]
        cpu360 = h360[side]["refresh_median"]["cpu"]
        lines.append(f"\n{side}: 360 days / 60 days = {cpu360 / cpu60:.2f}x (CPU).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:])
