"""Benchmark: the funnel SQL (`build_funnels`) against two pandas baselines, side by side.

Synthetic events (`benchmarks/synthetic_events.py`: 1M and 10M rows over 90 days, half of them
page views; the checkout funnel drops off step by step) are generated in DuckDB. Then, in one
run:

- SQL: `build_funnels` for the default checkout funnel (ordered, 7-day window), including the
  checkpoint that persists its tables, as the asset runs it; best and median of 3 runs;
- (a) pandas, vectorised: the same greedy matching with one `merge_asof` per step over every
  attempt, then the same outputs (users per step for all / platform / channel with median and
  mean times, users by entry date). Timed on a DataFrame already in memory: loading it from
  DuckDB is reported separately and NOT counted, which favours pandas;
- (b) pandas, a per-user loop (`groupby` + a Python loop per user, as a first implementation
  often looks): timed on a random sample of users only and extrapolated to all users by their
  share of events (stated as such in the results).
Results of (a) are checked against the SQL tables ('all' segment, every step, and funnel_daily).
Strict and unordered versions of the funnel are timed once each, for information.

Then (issue 17) page views get a `path` property (untimed setup: 20% /pricing, 10% /plans, the
rest /home), and the checkout funnel with a filtered first step
(`page_view[path=/pricing|/plans]`) and an exclusion (`search` between signup and add_to_cart)
is timed alternately with the plain checkout funnel, best of 3 each, so that both see the same
machine; target: at most 1.5x the plain funnel. The contract's own shape (page_view, then
page_view[path=/pricing], then purchase: the general path, one event in two steps) is timed
once, for information.

Run: `.venv/bin/python -m benchmarks.funnel_bench` (or `make bench`). Writes
`benchmarks/results/funnel_bench.md` and `.json`. Targets (issue 3): the funnel over 10M events
in <= 1.5 s and >= 3x faster than vectorised pandas.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from assets.marts.funnels import build_funnels
from benchmarks.synthetic_events import synthetic_warehouses
from pipelines.settings import Exclusion, Funnel, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPEATS = 3
LOOP_SAMPLE_USERS = 2_000
CHECKOUT = Funnel("checkout", ("page_view", "signup", "add_to_cart", "purchase"))
TARGET_SECONDS = 1.5
TARGET_RATIO = 3.0
FILTERED = Funnel(
    "checkout_filtered",
    CHECKOUT.steps,
    where=((("path", ("/pricing", "/plans")),), (), (), ()),
    exclusions=(Exclusion("search", 2, 3),),
)
PRICING_PAGE = Funnel(
    "pricing_page",
    ("page_view", "page_view", "purchase"),
    where=((), (("path", ("/pricing",)),), ()),
)
TARGET_FILTERED_RATIO = 1.5
# Untimed setup: a path for every page view, from its id (deterministic).
ADD_PATHS = """
update event_copies
set properties = json_object(
    'path',
    case hash(event_id) % 10 when 0 then '/pricing' when 1 then '/pricing' when 2 then '/plans'
        else '/home' end
)
where event = 'page_view'
"""


def main() -> None:
    runs = []
    for conn, n_events, _users, generated in synthetic_warehouses("funnel-bench"):
        runs.append(benchmark(conn, n_events, generated))
        r = runs[-1]
        print(
            f"[funnel_bench] {n_events:,} events: SQL {r['sql_seconds']['best']:.2f} s, "
            f"pandas vectorised {r['pandas_vectorised_seconds']:.2f} s, "
            f"per-user loop ~{r['pandas_loop_seconds_extrapolated']:.0f} s",
            flush=True,
        )
    write_results(runs)


def benchmark(conn: duckdb.DuckDBPyConnection, n_events: int, generated: float) -> dict:
    settings = Settings(home=Path("."), funnels=(CHECKOUT,))
    sql_seconds = [time_sql(conn, settings) for _ in range(REPEATS)]
    other_modes = {
        order: time_sql(conn, Settings(home=Path("."), funnels=(_mode(order),)))
        for order in ("strict", "unordered")
    }
    time_sql(conn, settings)  # leave the ordered tables for the comparison below
    sql_all = sql_tables(conn)

    started = time.perf_counter()
    frame = conn.sql("select user_id, event, ts, event_id, platform, channel from events").df()
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    vectorised = pandas_vectorised(frame, CHECKOUT)
    vectorised_seconds = time.perf_counter() - started
    same = same_results(vectorised, sql_all)

    loop = pandas_loop_sample(frame, CHECKOUT)
    filtered = filtered_timings(conn)
    best = min(sql_seconds)
    users = conn.execute("select count(distinct user_id) from events").fetchall()[0][0]
    return {
        "events": n_events,
        "users": users,
        "generate_seconds": round(generated, 2),
        "sql_seconds": {
            "best": round(best, 3),
            "median": round(statistics.median(sql_seconds), 3),
            "all": [round(s, 3) for s in sql_seconds],
        },
        "sql_other_modes_seconds": {m: round(s, 3) for m, s in other_modes.items()},
        "pandas_load_seconds": round(load_seconds, 2),
        "pandas_vectorised_seconds": round(vectorised_seconds, 3),
        "pandas_loop_sample_users": loop["sample_users"],
        "pandas_loop_sample_seconds": round(loop["seconds"], 3),
        "pandas_loop_seconds_extrapolated": round(loop["extrapolated"], 1),
        "ratio_vectorised_over_sql": round(vectorised_seconds / best, 1),
        "ratio_loop_over_sql": round(loop["extrapolated"] / best, 0),
        "pandas_matches_sql": same,
        "funnel_users": sql_all["steps"],
        **filtered,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def filtered_timings(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The filtered funnel with an exclusion, timed alternately with the plain one."""
    started = time.perf_counter()
    conn.execute(ADD_PATHS)
    conn.execute("checkpoint")
    setup = time.perf_counter() - started
    plain = Settings(home=Path("."), funnels=(CHECKOUT,))
    filtered = Settings(home=Path("."), funnels=(FILTERED,))
    timings: dict[str, list[float]] = {"plain": [], "filtered": []}
    for _ in range(REPEATS):
        timings["plain"].append(time_sql(conn, plain))
        timings["filtered"].append(time_sql(conn, filtered))
    filtered_users = sql_tables(conn)["steps"]
    pricing_seconds = time_sql(conn, Settings(home=Path("."), funnels=(PRICING_PAGE,)))
    pricing_users = sql_tables(conn)["steps"]
    return {
        "paths_setup_seconds": round(setup, 2),
        "plain_alternating_seconds": [round(s, 3) for s in timings["plain"]],
        "filtered_seconds": [round(s, 3) for s in timings["filtered"]],
        "ratio_filtered_over_plain": round(min(timings["filtered"]) / min(timings["plain"]), 2),
        "filtered_users": filtered_users,
        "pricing_page_seconds": round(pricing_seconds, 3),
        "pricing_page_users": pricing_users,
    }


def _mode(order: str) -> Funnel:
    return Funnel(CHECKOUT.name, CHECKOUT.steps, CHECKOUT.window_seconds, order)


def time_sql(conn: duckdb.DuckDBPyConnection, settings: Settings) -> float:
    started = time.perf_counter()
    build_funnels(conn, settings)
    conn.execute("checkpoint")
    return time.perf_counter() - started


def sql_tables(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    steps = conn.execute(
        "select users from funnel_steps where dimension = 'all' order by step_index"
    ).fetchall()
    daily = conn.execute(
        "select entry_date, step_index, users from funnel_daily where users > 0 order by all"
    ).fetchall()
    return {"steps": [u for (u,) in steps], "daily": daily}


def pandas_vectorised(frame: pd.DataFrame, funnel: Funnel) -> dict[str, Any]:
    """Ordered funnel (no repeated step names) with one merge_asof per step over all attempts."""
    window = pd.Timedelta(seconds=funnel.window_seconds)
    steps = funnel.steps
    entries = frame.loc[
        frame["event"] == steps[0], ["user_id", "ts", "event_id", "platform", "channel"]
    ]
    attempts = entries.rename(columns={"ts": "t1"}).reset_index(drop=True)
    attempts["reached"] = 1
    alive = attempts
    for k in range(2, len(steps) + 1):
        right = frame.loc[frame["event"] == steps[k - 1], ["user_id", "ts"]]
        right = right.rename(columns={"ts": f"t{k}"}).sort_values(f"t{k}")
        left = alive.sort_values(f"t{k - 1}")
        matched = pd.merge_asof(
            left,
            right,
            left_on=f"t{k - 1}",
            right_on=f"t{k}",
            by="user_id",
            direction="forward",
            allow_exact_matches=True,
        )
        ok = matched[f"t{k}"].notna() & (matched[f"t{k}"] <= matched["t1"] + window)
        alive = matched.loc[ok].copy()
        alive["reached"] = k
        attempts = pd.concat([attempts, alive], ignore_index=True)
    # The counted attempt: furthest step, then earliest entry (time, event id).
    attempts = attempts.sort_values(
        ["user_id", "reached", "t1", "event_id"], ascending=[True, False, True, True]
    )
    counted = attempts.drop_duplicates("user_id", keep="first").copy()
    counted["entry_date"] = counted["t1"].dt.date
    counted["platform"] = counted["platform"].fillna("unknown")
    counted["channel"] = counted["channel"].fillna("unknown")
    step_rows = []
    for dimension in ("all", "platform", "channel"):
        groups = [("all", counted)] if dimension == "all" else counted.groupby(dimension)
        for segment, members in groups:
            for k in range(1, len(steps) + 1):
                reached = members[members["reached"] >= k]
                gaps = (
                    (reached[f"t{k}"] - reached[f"t{k - 1}"]).dt.total_seconds()
                    if k > 1
                    else pd.Series(dtype=float)
                )
                step_rows.append((dimension, segment, k, len(reached), gaps.median(), gaps.mean()))
    daily = pd.DataFrame(
        [
            (day, k, int((group["reached"] >= k).sum()))
            for day, group in counted.groupby("entry_date")
            for k in range(1, len(steps) + 1)
        ],
        columns=["entry_date", "step_index", "users"],
    )
    return {"steps": step_rows, "daily": daily}


def same_results(vectorised: dict[str, Any], sql_all: dict[str, Any]) -> bool:
    users = [row[3] for row in vectorised["steps"] if row[0] == "all"]
    daily = vectorised["daily"]
    daily = daily[daily["users"] > 0]
    pandas_daily = [
        (d, int(k), int(u))
        for d, k, u in daily.sort_values(["entry_date", "step_index"]).itertuples(index=False)
    ]
    return users == sql_all["steps"] and pandas_daily == sql_all["daily"]


def pandas_loop_sample(frame: pd.DataFrame, funnel: Funnel) -> dict[str, float]:
    """The per-user loop on a random sample of users, extrapolated by their share of events."""
    users = frame["user_id"].unique()
    sample = set(random.Random(7).sample(list(users), min(LOOP_SAMPLE_USERS, len(users))))
    subset = frame[frame["user_id"].isin(sample)]
    started = time.perf_counter()
    for _, own in subset.groupby("user_id"):
        _loop_one_user(own.sort_values(["ts", "event_id"]), funnel)
    seconds = time.perf_counter() - started
    share = len(subset) / len(frame)
    return {"sample_users": len(sample), "seconds": seconds, "extrapolated": seconds / share}


def _loop_one_user(own: pd.DataFrame, funnel: Funnel) -> tuple[int, Any]:
    window = pd.Timedelta(seconds=funnel.window_seconds)
    rows = list(own.itertuples(index=False))
    best: tuple[int, Any] = (0, None)
    for entry in rows:
        if entry.event != funnel.steps[0]:
            continue
        times = [entry.ts]
        used = {entry.event_id}
        for step in funnel.steps[1:]:
            found = next(
                (
                    r
                    for r in rows
                    if r.event == step
                    and r.ts >= times[-1]
                    and r.ts <= entry.ts + window
                    and r.event_id not in used
                ),
                None,
            )
            if found is None:
                break
            times.append(found.ts)
            used.add(found.event_id)
        if len(times) > best[0]:
            best = (len(times), entry)
    return best


def write_results(runs: list[dict]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
    payload = {
        "benchmark": "funnel",
        "machine": machine,
        "targets": {"sql_10m_seconds": TARGET_SECONDS, "ratio_vs_vectorised": TARGET_RATIO},
        "runs": runs,
    }
    (RESULTS_DIR / "funnel_bench.json").write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS_DIR / "funnel_bench.md").write_text(markdown(runs, machine))


def markdown(runs: list[dict], machine: dict) -> str:
    lines = [
        "# Funnel benchmark (funnel_steps + funnel_daily)",
        "",
        f"DuckDB {machine['duckdb']}, pandas {machine['pandas']}, {machine['cpus']} CPUs, "
        f"Python {machine['python']}. Command: `.venv/bin/python -m benchmarks.funnel_bench`.",
        "Funnel: checkout (page_view -> signup -> add_to_cart -> purchase), ordered, 7-day "
        "window. Synthetic events over 90 days generated in DuckDB (`benchmarks/synthetic_events.py`).",
        "",
        "| | " + " | ".join(f"{r['events']:,} events" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
        _row("users", runs, lambda r: f"{r['users']:,}"),
        _row(
            "**SQL** (`build_funnels` + checkpoint), best of 3",
            runs,
            lambda r: f"**{r['sql_seconds']['best']:.2f} s**",
        ),
        _row("SQL, median of 3", runs, lambda r: f"{r['sql_seconds']['median']:.2f} s"),
        _row(
            "(a) pandas vectorised (merge_asof per step), compute only",
            runs,
            lambda r: f"{r['pandas_vectorised_seconds']:.2f} s",
        ),
        _row(
            "(b) pandas per-user loop, extrapolated*",
            runs,
            lambda r: f"~{r['pandas_loop_seconds_extrapolated']:.0f} s",
        ),
        _row("**ratio (a) / SQL**", runs, lambda r: f"**{r['ratio_vectorised_over_sql']}x**"),
        _row("ratio (b) / SQL", runs, lambda r: f"~{r['ratio_loop_over_sql']:.0f}x"),
        _row("pandas (a) results equal SQL's", runs, lambda r: str(r["pandas_matches_sql"])),
        _row(
            "loading the events into pandas (not counted above)",
            runs,
            lambda r: f"{r['pandas_load_seconds']:.2f} s",
        ),
        _row(
            "SQL, same funnel in strict mode",
            runs,
            lambda r: f"{r['sql_other_modes_seconds']['strict']:.2f} s",
        ),
        _row(
            "SQL, same funnel in unordered mode",
            runs,
            lambda r: f"{r['sql_other_modes_seconds']['unordered']:.2f} s",
        ),
        _row(
            "funnel users per step (all)",
            runs,
            lambda r: " / ".join(f"{u:,}" for u in r["funnel_users"]),
        ),
        _row(
            "plain checkout, timed alternately with the next row, best of 3",
            runs,
            lambda r: f"{min(r['plain_alternating_seconds']):.2f} s",
        ),
        _row(
            "**checkout with `page_view[path=/pricing\\|/plans]` and an exclusion**, best of 3",
            runs,
            lambda r: f"**{min(r['filtered_seconds']):.2f} s**",
        ),
        _row(
            "**ratio filtered / plain** (target <= 1.5x)",
            runs,
            lambda r: f"**{r['ratio_filtered_over_plain']}x**",
        ),
        _row(
            "filtered funnel users per step (all)",
            runs,
            lambda r: " / ".join(f"{u:,}" for u in r["filtered_users"]),
        ),
        _row(
            "page_view -> page_view[path=/pricing] -> purchase (general path), once",
            runs,
            lambda r: f"{r['pricing_page_seconds']:.2f} s",
        ),
        _row(
            "its users per step (all)",
            runs,
            lambda r: " / ".join(f"{u:,}" for u in r["pricing_page_users"]),
        ),
        _row("1-min load average at the end", runs, lambda r: f"{r['load_average_1min']}"),
        "",
        f"\\* (b) ran on a random sample of {runs[0]['pandas_loop_sample_users']:,} users and is "
        "extrapolated to all users by their share of the events; it was not run on everything.",
        "",
        f"Targets (issue 3): the funnel over 10M events in <= {TARGET_SECONDS} s and >= "
        f"{TARGET_RATIO:.0f}x faster than vectorised pandas. Target (issue 17): the funnel with "
        f"a filtered step and an exclusion at most {TARGET_FILTERED_RATIO}x the plain one, timed "
        "alternately in the same run. The machine is shared: the load average shows how busy "
        "it was.",
    ]
    return "\n".join(lines) + "\n"


def _row(label: str, runs: list[dict], cell) -> str:
    return f"| {label} | " + " | ".join(cell(r) for r in runs) + " |"


if __name__ == "__main__":
    main()
