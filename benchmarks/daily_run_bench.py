"""Benchmark: the one-day run (`eventpulse run --date D`) with 60 and with 360 days of history.

Issue 14: a daily run should cost what the day costs. The demo generator spreads `--users`
arrivals over `--days`, and returning visitors pile up, so the daily volume depends on both:
60 days x 5,000 users (the demo's default users) and 360 days x 20,000 users both end at about
7,000-8,000 records a day. For each history:

1. History (cached under $EVENTPULSE_BENCH_CACHE, default the temp folder; the first time it
   takes minutes, most of it the first run's reports and corpus): generate, hold back the last
   two arrival days, `eventpulse run` over the rest.
2. On a copy: the marts, the anomaly scores and the corpus are brought up to date (a history prepared by older
   code gets its first full mart build and its re-chunked corpus here), then the first held day is run and timed: the CLI's wall time
   and every step's time from the Dagster event log. "Without anomalies" is the run minus the
   anomaly steps (the anomaly issue works on that step).
3. The mart step alone on the warehouse before the timed day, after loading that day: each
   mart updated from the recorded changes, and rebuilt in full, on two copies.

Run: `.venv/bin/python -m benchmarks.daily_run_bench` (part of `make bench`). Writes
`benchmarks/results/daily_run_bench.md` and `.json`. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import score_changed_days
from assets.ingest.load import load_partition
from assets.marts.cohorts import build_cohorts, update_cohorts
from assets.marts.funnels import update_funnels
from assets.marts.metrics import build_daily_metrics, update_daily_metrics
from assets.marts.retention import update_retention
from assets.marts.sessions_users import build_sessions, build_users, update_sessions, update_users
from pipelines import warehouse
from pipelines.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_DIR = Path(__file__).resolve().parent.parent
HISTORIES = ((60, 5000), (360, 20000))  # (days, users): about the same daily volume at the end
SEED = 7
SETTINGS = Settings(home=Path("."))  # the defaults, as the demo runs
MARTS = ("sessions", "users", "daily_metrics", "cohorts")


def main(only_days: list[int] | None = None) -> None:
    """Every history, or only those of `only_days` (`python -m benchmarks.daily_run_bench 60`:
    a check of the benchmark itself; the results are written either way)."""
    cache = Path(os.environ.get("EVENTPULSE_BENCH_CACHE", tempfile.gettempdir()))
    cache = cache / "eventpulse-daily-run-bench"
    cache.mkdir(parents=True, exist_ok=True)
    runs = [
        bench_history(cache, days, users)
        for days, users in HISTORIES
        if not only_days or days in only_days
    ]
    write_results(runs)


def bench_history(cache: Path, days: int, users: int) -> dict:
    history = prepared_history(cache, days, users)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(history, home)
        timed_day = sorted(p.name for p in (home / "held").iterdir())[0]
        primed = prime_marts(home / "warehouse.duckdb")
        # The corpus as this code chunks it: a history prepared by earlier code (other chunks
        # for the same reports) is re-chunked here, not in the timed run.
        cli(home, "corpus")
        before = Path(scratch) / "before.duckdb"
        shutil.copy(home / "warehouse.duckdb", before)
        load = os.getloadavg()[0]
        timed = run_held_day(home, timed_day)
        marts = time_mart_step(before, home, dt.date.fromisoformat(timed_day.split("=")[1]))
        records = day_records(home, timed_day)
    print(
        f"[daily_run_bench] {days} days: one-day run {timed['seconds']:.1f} s (load {load:.1f})",
        flush=True,
    )
    return {
        "history_days": days,
        "users": users,
        "timed_day": timed_day.split("=")[1],
        "day_records": records,
        "load_average_1min": round(load, 2),
        "primed_marts": primed,
        "one_day_run": timed,
        "mart_step": marts,
    }


def prepared_history(cache: Path, days: int, users: int) -> Path:
    """Generated history with the last two arrival days held back, run once (cached)."""
    history = cache / f"history-{days}d-{users}u-seed{SEED}"
    if (history / "prepared").exists():
        return history
    shutil.rmtree(history, ignore_errors=True)
    history.mkdir(parents=True)
    cli(history, "generate", "--days", str(days), "--users", str(users), "--seed", str(SEED))
    held = history / "held"
    held.mkdir()
    for folder in sorted((history / "landing" / "events").iterdir())[-2:]:
        folder.rename(held / folder.name)
    started = time.perf_counter()
    cli(history, "run")
    (history / "prepared").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return history


def prime_marts(path: Path) -> str:
    """Bring the history's marts and anomaly scores up to date before the timed day: a
    history prepared by code without incremental state (or an older scorer) gets its first
    full build here, not in the timed run; one prepared with it has nothing left to apply."""
    conn = warehouse.connect(path)
    try:
        modes = [
            update_sessions(conn, SETTINGS).mode,
            update_users(conn, SETTINGS).mode,
            update_daily_metrics(conn, SETTINGS).mode,
            update_cohorts(conn).mode,
            update_funnels(conn, SETTINGS).mode,
            update_retention(conn, SETTINGS.retention, SETTINGS.timezone).mode,
        ]
        # Scored as this code scores (a scorer version newer than the history's re-scores
        # every day once): the timed run then scores its own day only.
        update = score_changed_days(conn, SETTINGS.anomalies)
        write_anomalies(conn, update, SETTINGS.anomalies)
        if update.full:
            modes.append("full")
        conn.execute("checkpoint")
    finally:
        conn.close()
    return "full" if "full" in modes else "incremental"


def run_held_day(home: Path, folder: str) -> dict:
    """Put a held arrival day back in landing/ and run it: wall time and step times."""
    (home / "held" / folder).rename(home / "landing" / "events" / folder)
    since = time.time()
    started = time.perf_counter()
    cli(home, "run", "--date", folder.split("=")[1])
    seconds = time.perf_counter() - started
    steps = run_steps_since(home / "dagster", since)
    anomaly = sum(s for step, s in steps.items() if "anomal" in step)
    return {
        "seconds": round(seconds, 2),
        "steps": steps,
        "anomaly_seconds": round(anomaly, 2),
        "without_anomalies_seconds": round(seconds - anomaly, 2),
    }


def cli(home: Path, *args: str, code: Path = PROJECT_DIR) -> None:
    """`eventpulse ARGS` in `home`, run from the project's files in `code` (default: these)."""
    # No eventpulse.yaml in the home, which is the working directory: the built-in defaults.
    env = {
        **{k: v for k, v in os.environ.items() if k != "EVENTPULSE_CONFIG"},
        "EVENTPULSE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(code),
    }
    command = [sys.executable, "-m", "pipelines.cli", *args]
    subprocess.run(command, cwd=home, env=env, check=True, stdout=subprocess.DEVNULL)


def run_steps_since(dagster_home: Path, since: float) -> dict[str, float]:
    """Seconds per step of every run started after `since` (a Unix time), from the Dagster
    event log: `eventpulse run` makes two runs, the warehouse's steps and then the reports and
    corpus that read the published warehouse."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = [
            r for r in instance.get_run_records(limit=10) if r.create_timestamp.timestamp() >= since
        ]
        stats = [s for r in records for s in instance.get_run_step_stats(r.dagster_run.run_id)]
    return {
        s.step_key: round(s.end_time - s.start_time, 2)
        for s in sorted(stats, key=lambda s: s.start_time or 0)
        if s.start_time and s.end_time
    }


def time_mart_step(before: Path, home: Path, day: dt.date) -> dict[str, dict[str, float]]:
    """Each mart updated from the day's changes, and rebuilt in full, after loading the day
    into copies of the warehouse as it was before; seconds include the checkpoint."""
    landing = home / "landing" / "events"
    result: dict[str, dict[str, float]] = {mart: {} for mart in MARTS}
    builders = {
        "incremental": (
            lambda c: update_sessions(c, SETTINGS),
            lambda c: update_users(c, SETTINGS),
            lambda c: update_daily_metrics(c, SETTINGS),
            update_cohorts,
        ),
        "full": (
            lambda c: build_sessions(c, SETTINGS),
            lambda c: build_users(c, SETTINGS),
            lambda c: build_daily_metrics(c, SETTINGS),
            build_cohorts,
        ),
    }
    for mode, steps in builders.items():
        copy = before.with_name(f"{mode}.duckdb")
        shutil.copy(before, copy)
        conn = warehouse.connect(copy)
        try:
            load_partition(conn, landing, day)
            conn.execute("checkpoint")
            for mart, step in zip(MARTS, steps, strict=True):
                started = time.perf_counter()
                step(conn)
                conn.execute("checkpoint")
                result[mart][mode] = round(time.perf_counter() - started, 3)
        finally:
            conn.close()
    return result


def day_records(home: Path, folder: str) -> int:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(
            "select records from ingest_log where arrival_date = $day "
            "order by finished_at desc limit 1",
            {"day": dt.date.fromisoformat(folder.split("=")[1])},
        ).fetchall()[0][0]
    finally:
        conn.close()


def write_results(runs: list[dict]) -> None:
    write_run_results("daily_run", runs, markdown)


def write_run_results(
    name: str, runs: list[dict], render: Callable[[list[dict], dict], str]
) -> None:
    """`benchmarks/results/<name>_bench.json` and `.md` (rendered by `render(runs, machine)`)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }
    payload = {"benchmark": name, "machine": machine, "runs": runs}
    (RESULTS_DIR / f"{name}_bench.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / f"{name}_bench.md").write_text(render(runs, machine))


def markdown(runs: list[dict], machine: dict) -> str:
    heads = " | ".join(f"{r['history_days']} days of history" for r in runs)
    lines = [
        "# One-day run benchmark (issue 14)",
        "",
        f"DuckDB {machine['duckdb']}, {machine['cpus']} CPUs, Python {machine['python']}, a "
        "machine shared with other work (noisy). Demo data (seed 7), the day after the history "
        "held back and then run with `eventpulse run --date D`; step times from the Dagster "
        "event log. Command: `.venv/bin/python -m benchmarks.daily_run_bench` (part of "
        "`make bench`).",
        "",
        f"| | {heads} |",
        "|---|" + "---:|" * len(runs),
        "| demo `--days` / `--users` | "
        + " | ".join(f"{r['history_days']} / {r['users']:,}" for r in runs)
        + " |",
        "| records of the timed day | " + " | ".join(f"{r['day_records']:,}" for r in runs) + " |",
        "| **one-day run** (CLI wall time) | "
        + " | ".join(f"**{r['one_day_run']['seconds']:.1f} s**" for r in runs)
        + " |",
        "| without the anomaly steps | "
        + " | ".join(f"{r['one_day_run']['without_anomalies_seconds']:.1f} s" for r in runs)
        + " |",
        "| marts before the timed day (history's own run, or primed in full) | "
        + " | ".join(r["primed_marts"] for r in runs)
        + " |",
        "| 1-min load average before the timed run | "
        + " | ".join(f"{r['load_average_1min']:.1f}" for r in runs)
        + " |",
    ]
    steps = list(dict.fromkeys(s for r in runs for s in r["one_day_run"]["steps"]))
    lines += ["", "Steps of the one-day run:", "", f"| step | {heads} |"]
    lines.append("|---|" + "---:|" * len(runs))
    for step in steps:
        cells = " | ".join(
            f"{r['one_day_run']['steps'][step]:.2f} s" if step in r["one_day_run"]["steps"] else "-"
            for r in runs
        )
        lines.append(f"| {step} | {cells} |")
    lines += [
        "",
        "The mart step alone, after loading the timed day: updated from the recorded changes "
        "vs rebuilt in full (seconds, checkpoint included):",
        "",
        "| mart | " + " | ".join(f"{r['history_days']} days: update / full" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for mart in MARTS:
        cells = " | ".join(
            f"{r['mart_step'][mart]['incremental']:.2f} s / {r['mart_step'][mart]['full']:.2f} s"
            for r in runs
        )
        lines.append(f"| {mart} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]])
