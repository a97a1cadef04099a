"""Benchmark: rebuild the users, sessions, daily_metrics, retention and cohorts marts.

Synthetic events (`benchmarks/synthetic_events.py`, 1M and 10M rows over 90 days) are generated
in DuckDB into the project's `events` (CONTRACT §3; the marts read nothing else), then each
model is built by the function its asset calls (`build_sessions`, ...) on a file database and
checkpointed, as the warehouse writer does. Issue 3's target: all marts from 10M events in
<= 20 s on the 2-core machine. Funnels are timed by their own benchmark.

Breakdowns (issue 17): after the five models, each event gets a country (30 values, so the
default limit of 25 folds some into 'other') and a `properties.app_version` (a number or text),
and `daily_metrics` is rebuilt alternately with the two default dimensions and with four
(platform, channel, country, properties.app_version), on the same events, each build with the
dimension_user_days and dimension_values it counts from; target: four dimensions in <= 1.5x
the two-dimension time. `benchmarks/dimensions_compare.py` times the same builds against an
earlier revision's, alternated process by process.

Run: `.venv/bin/python -m benchmarks.marts_bench` (or `make bench`). Writes
`benchmarks/results/marts_bench.md` and `.json`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from assets.marts.cohorts import build_cohorts
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from benchmarks.synthetic_events import DAYS, synthetic_warehouses
from pipelines.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The functions the assets call, in build order: users needs sessions; the marts need both.
BUILDERS: dict[str, Callable[[duckdb.DuckDBPyConnection, Settings], int]] = {
    "sessions": build_sessions,
    "users": build_users,
    "daily_metrics": build_daily_metrics,
    "retention": lambda conn, _settings: build_retention(conn),
    "cohorts": lambda conn, _settings: build_cohorts(conn),
}
MODELS = tuple(BUILDERS)


FOUR_DIMENSIONS = ("platform", "channel", "country", "properties.app_version")
DIMENSION_ROUNDS = 3
# A country per user (30 values) and an app version per user, half of them numbers and half
# text ("3.4" and 4 are different values; 1 in 10 events has none).
ADD_DIMENSIONS = """
update event_copies set
    country = [
        'NL', 'DE', 'US', 'GB', 'FR', 'ES', 'IT', 'SE', 'NO', 'DK', 'FI', 'PL', 'PT', 'IE', 'BE',
        'AT', 'CH', 'CZ', 'HU', 'RO', 'GR', 'BG', 'HR', 'SK', 'SI', 'LT', 'LV', 'EE', 'JP', 'KR'
    ][1 + (hash(user_id, 31) % 30)::integer],
    properties = case
        when hash(event_id) % 10 = 0 then '{}'::json
        when hash(user_id, 32) % 2 = 0
            then json_object('app_version', '3.' || (hash(user_id, 33) % 12))
        else json_object('app_version', (hash(user_id, 33) % 12)::integer)
    end
"""


def main() -> None:
    settings = Settings(home=Path("."))  # the defaults: conversion `purchase`, gap 1800 s
    runs = []
    for conn, n_events, n_users, generated in synthetic_warehouses("marts-bench"):
        load = os.getloadavg()[0]
        models = time_models(conn, settings)
        run = summary(n_events, n_users, generated, load, models)
        run["dimensions"] = time_dimensions(conn, settings)
        runs.append(run)
        print(
            f"[marts_bench] {n_events:,} events: {run['total_seconds']:.2f} s "
            f"(CPU {run['total_cpu_seconds']:.2f} s, load {load:.1f})",
            flush=True,
        )
    write_results(runs)


def time_models(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, dict]:
    """Wall seconds, CPU seconds (all threads) and rows per model; each includes the checkpoint
    that persists the table. CPU time is reported too because the machine is shared: other
    work stretches the wall time, not the CPU time."""
    models = {}
    for model, build in BUILDERS.items():
        wall, cpu = time.perf_counter(), time.process_time()
        rows = build(conn, settings)
        conn.execute("checkpoint")
        models[model] = {
            "seconds": round(time.perf_counter() - wall, 3),
            "cpu_seconds": round(time.process_time() - cpu, 3),
            "rows": rows,
        }
    return models


def time_dimensions(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """daily_metrics with two and with four dimensions, alternately on the same events: the
    best wall and CPU seconds of each. Each build includes grouping every event into
    dimension_user_days and counting dimension_values from it (build_daily_metrics rebuilds
    both), as the five-model timing above does."""
    conn.execute(ADD_DIMENSIONS)
    conn.execute("checkpoint")
    variants = {
        "two": settings,
        "four": Settings(home=Path("."), dimensions=FOUR_DIMENSIONS),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(DIMENSION_ROUNDS):
        for name, variant in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            build_daily_metrics(conn, variant)
            conn.execute("checkpoint")
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    rows = {
        name: conn.execute("select count(*) from daily_metrics").fetchall()[0][0]
        for name in ("four",)
    }
    best = {name: min(t) for name, t in times.items()}
    return {
        "rounds": DIMENSION_ROUNDS,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "two_seconds": round(best["two"][0], 3),
        "two_cpu_seconds": round(min(c for _, c in times["two"]), 3),
        "four_seconds": round(best["four"][0], 3),
        "four_cpu_seconds": round(min(c for _, c in times["four"]), 3),
        "all_seconds": {name: [round(w, 3) for w, _ in t] for name, t in times.items()},
        "four_rows": rows["four"],
        "ratio": round(best["four"][0] / best["two"][0], 2),
    }


def summary(
    n_events: int, n_users: int, generated: float, load: float, models: dict[str, dict]
) -> dict:
    return {
        "events": n_events,
        "users": models["users"]["rows"],
        "requested_users": n_users,
        "days": DAYS,
        "generate_seconds": round(generated, 2),
        "load_average_1min": round(load, 2),
        "models": models,
        "total_seconds": round(sum(m["seconds"] for m in models.values()), 2),
        "total_cpu_seconds": round(sum(m["cpu_seconds"] for m in models.values()), 2),
    }


def write_results(runs: list[dict]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }
    payload = {"benchmark": "marts", "machine": machine, "target_10m_seconds": 20, "runs": runs}
    (RESULTS_DIR / "marts_bench.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / "marts_bench.md").write_text(markdown(runs, machine))


def markdown(runs: list[dict], machine: dict) -> str:
    sizes = " | ".join(f"{r['events']:,} events" for r in runs)
    lines = [
        "# Marts benchmark (sessions, users, daily_metrics, retention, cohorts)",
        "",
        f"DuckDB {machine['duckdb']}, {machine['cpus']} CPUs, Python {machine['python']}. "
        f"Synthetic events over {DAYS} days, generated in DuckDB; each model is built by the "
        "function its asset calls, on a file database, then checkpointed. Wall time, with the "
        "process CPU time (both DuckDB threads) in brackets: on an idle 2-core machine wall is "
        "about CPU / 2; other work on a shared machine stretches wall time only. "
        "Command: `.venv/bin/python -m benchmarks.marts_bench` (part of `make bench`).",
        "",
        f"| model | {sizes} |",
        "|---|" + "---:|" * len(runs),
    ]
    for model in MODELS:
        cells = " | ".join(
            f"{r['models'][model]['seconds']:.2f} s ({r['models'][model]['cpu_seconds']:.2f} s)"
            for r in runs
        )
        lines.append(f"| {model} | {cells} |")
    totals = " | ".join(
        f"**{r['total_seconds']:.2f} s** ({r['total_cpu_seconds']:.2f} s)" for r in runs
    )
    lines.append(f"| **all five** | {totals} |")
    loads = " | ".join(f"{r['load_average_1min']:.1f}" for r in runs)
    lines += [
        f"| 1-min load average at start | {loads} |",
        "",
        "Target (issue 3): all marts from 10M events in <= 20 s; funnels are timed in their "
        "own benchmark.",
        "",
        "| events | users | sessions | daily_metrics rows | retention rows | cohorts rows |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        n = {model: r["models"][model]["rows"] for model in MODELS}
        lines.append(
            f"| {r['events']:,} | {n['users']:,} | {n['sessions']:,} | {n['daily_metrics']:,} "
            f"| {n['retention']:,} | {n['cohorts']:,} |"
        )
    lines += [
        "",
        "## daily_metrics with four dimensions (issue 17)",
        "",
        "Each event given a country (30 values: 5 folded into 'other' by the default limit of "
        "25) and `properties.app_version` (a number or text, missing on 1 event in 10); then "
        "`daily_metrics` rebuilt alternately with two dimensions (platform, channel) and four "
        "(platform, channel, country, properties.app_version) on those same events, "
        "best of the rounds, wall (CPU); each build includes grouping every event into "
        "`dimension_user_days` and counting `dimension_values` from it. Target: four <= 1.5x two.",
        "",
        "| events | two dimensions | four dimensions | four / two | rows (four) | rounds "
        "(wall, two; four) | load at end |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        d = r["dimensions"]
        lines.append(
            f"| {r['events']:,} | {d['two_seconds']:.2f} s ({d['two_cpu_seconds']:.2f} s) "
            f"| {d['four_seconds']:.2f} s ({d['four_cpu_seconds']:.2f} s) | {d['ratio']:.2f}x "
            f"| {d['four_rows']:,} | {d['all_seconds']['two']}; {d['all_seconds']['four']} "
            f"| {d['load_average_1min']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
