"""Ingest throughput: 1M JSON-lines records through the full validating ingest (vendor paths
and configured aliases on), side by side with a plain DuckDB `read_json` of the same file (the
baseline: parsing without validation, dedup or quarantine); a 1M-record Mixpanel raw export;
and identity resolution timed inside the loads of ten 1M-record days with 20% anonymous
traffic (10M events), so its cost can be read next to the load's as history grows."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from assets.ingest.load import load_partition
from benchmarks.revisions import run_script
from pipelines import warehouse

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
RECORDS = 1_000_000
RUNS = 5  # loads of the day (and baseline reads), alternating: the medians are the figures
IDENTITY_DAYS = 10
ANONYMOUS_SHARE = 0.2
DAY = dt.date(2026, 3, 10)
# Configured aliases that the records do not use: their paths are read for every record.
ALIASES = {"timestamp": ("event_date",), "revenue": ("dollar_value",)}
# Run inside the checkout under test: only its own load_partition and warehouse are imported.
ONE_LOAD = """
import datetime as dt, inspect, json, resource, sys, time
from pathlib import Path
from assets.ingest import load
from pipelines import warehouse
landing, db = Path(sys.argv[1]), Path(sys.argv[2])
days = [dt.date.fromisoformat(day) for day in sys.argv[3].split(",")]
# ALIASES, as the one optional argument; a revision from before `aliases` (issue 13) has none.
takes_aliases = "aliases" in inspect.signature(load.load_partition).parameters
aliases = (json.loads(sys.argv[4]),) if takes_aliases else ()
# "reload": read the day again even when its files did not change (a revision from before
# unchanged days were skipped reads them anyway, and has no such parameter).
forced = {"reload_unchanged": True} if sys.argv[5:] == ["reload"] else {}
conn = warehouse.connect(db)
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
# One day as load_partition loads it (a revision from before load_range has only that).
if len(days) == 1:
    results = [load.load_partition(conn, landing, days[0], *aliases, **forced)]
else:
    results = load.load_range(conn, landing, days, *aliases, **forced)
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
conn.close()
print(json.dumps({"wall": wall, "cpu": cpu, "loaded": sum(r.loaded for r in results),
                  "quarantined": sum(r.quarantined for r in results),
                  "identity_seconds": sum(getattr(r, "identity_seconds", 0.0) for r in results)}))
"""
# The baseline, in a process of its own like each load and with the same connection settings:
# DuckDB's own `read_json` of the file into a table (no validation, dedup or quarantine).
ONE_READ_JSON = """
import json, resource, sys, time
from pathlib import Path
from pipelines import warehouse
conn = warehouse.connect(Path(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
conn.execute("create table plain as select * from read_json($p)", {"p": sys.argv[1]})
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
conn.close()
print(json.dumps({"wall": wall,
                  "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime}))
"""
EVENTS = np.array(["page_view", "signup", "add_to_cart", "purchase", "search"])
EVENT_SHARE = [0.6, 0.1, 0.15, 0.05, 0.1]


def write_events(path: Path, n: int, seed: int = 1) -> None:
    """Realistic records: mixed aliases off, ids present, some properties, ~1% duplicates."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50_000, n)
    seconds = np.sort(rng.integers(0, 86_400, n))
    events = EVENTS[rng.choice(5, n, p=EVENT_SHARE)]
    platforms = np.array(["web", "ios", "android"])[rng.integers(0, 3, n)]
    ids = np.arange(n)
    ids[rng.random(n) < 0.01] = 0  # re-sent copies of one event id
    base = dt.datetime(2026, 3, 10)
    _write_lines(
        path,
        n,
        lambda i: {
            "event_id": f"e{ids[i]}",
            "user_id": f"u{users[i]}",
            "event": events[i],
            "timestamp": (base + dt.timedelta(seconds=int(seconds[i]))).isoformat() + "Z",
            "properties": {"platform": platforms[i], "revenue": 20.0}
            if events[i] == "purchase"
            else {"platform": platforms[i]},
        },
    )


def write_mixpanel_events(path: Path, n: int, seed: int = 2) -> None:
    """A Mixpanel raw export: everything inside `properties`, epoch-second times, anonymous
    devices as "$device:<id>" (20%), identified users with $user_id and $device_id."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50_000, n)
    anonymous = rng.random(n) < ANONYMOUS_SHARE
    seconds = np.sort(rng.integers(0, 86_400, n)) + int(dt.datetime(2026, 3, 10).timestamp())
    events = EVENTS[rng.choice(5, n, p=EVENT_SHARE)]
    os_names = np.array(["Windows", "iOS", "Android"])[rng.integers(0, 3, n)]

    def record(i: int) -> dict:
        device = f"d{users[i]}"
        properties = {
            "time": int(seconds[i]),
            "distinct_id": f"$device:{device}" if anonymous[i] else f"u{users[i]}",
            "$device_id": device,
            "$insert_id": f"i{i}",
            "$os": os_names[i],
            "utm_source": "newsletter",
        }
        if not anonymous[i]:
            properties["$user_id"] = f"u{users[i]}"
        return {"event": events[i], "properties": properties}

    _write_lines(path, n, record)


def write_anonymous_day(path: Path, day: int, n: int) -> None:
    """One day of a product with anonymous traffic: 20% of the records carry only a device id;
    the others carry their user and the device they use (so they link it)."""
    rng = np.random.default_rng(100 + day)
    users = rng.integers(0, 200_000, n)
    anonymous = rng.random(n) < ANONYMOUS_SHARE
    seconds = np.sort(rng.integers(0, 86_400, n))
    events = EVENTS[rng.choice(5, n, p=EVENT_SHARE)]
    start = dt.datetime(2026, 3, 1) + dt.timedelta(days=day)

    def record(i: int) -> dict:
        row = {
            "event_id": f"e{day}-{i}",
            "anonymous_id": f"d{users[i]}",
            "event": events[i],
            "timestamp": (start + dt.timedelta(seconds=int(seconds[i]))).isoformat() + "Z",
            "properties": {"platform": "web"},
        }
        if not anonymous[i]:
            row["user_id"] = f"u{users[i]}"
        return row

    _write_lines(path, n, record)


def _write_lines(path: Path, n: int, record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for start in range(0, n, 100_000):
            lines = [json.dumps(record(i)) for i in range(start, min(n, start + 100_000))]
            out.write("\n".join(lines) + "\n")


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        figures = _throughput(Path(scratch))
    with tempfile.TemporaryDirectory() as scratch:
        figures["identity_loads"] = _identity(Path(scratch))
    (RESULTS / "ingest_bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "ingest_bench.md").write_text(_report(figures))
    print((RESULTS / "ingest_bench.md").read_text())


def _throughput(home: Path) -> dict:
    """RUNS loads of the 1M-record day, each into a fresh warehouse in a process of its own
    (as a scheduled run loads a day), alternating with the baseline's read; the medians are
    the figures, the spread is reported beside them. Then one re-load of the day and one load
    of the Mixpanel export into the last warehouse."""
    landing = home / "landing" / "events"
    path = landing / f"date={DAY}" / "events.jsonl"
    write_events(path, RECORDS)
    mixpanel_day = DAY + dt.timedelta(days=1)
    write_mixpanel_events(landing / f"date={mixpanel_day}" / "mixpanel.json", RECORDS)

    load_before = os.getloadavg()
    reads, loads = [], []
    for run in range(RUNS):
        baseline_db = home / f"baseline-{run}.duckdb"
        reads.append(run_script(ROOT, ONE_READ_JSON, str(path), str(baseline_db)))
        baseline_db.unlink()
        db = home / f"warehouse-{run}.duckdb"
        if run:
            (home / f"warehouse-{run - 1}.duckdb").unlink()
        loads.append(_one_load(landing, db, DAY))
        print(
            f"[ingest_bench] run {run + 1}: read_json {reads[-1]}, ingest {loads[-1]}", flush=True
        )
    reload = _one_load(landing, db, DAY, "reload")
    mixpanel = _one_load(landing, db, mixpanel_day)
    ingest_s = statistics.median(x["wall"] for x in loads)
    baseline_s = statistics.median(x["wall"] for x in reads)
    return {
        # A shared machine: CPU seconds (all DuckDB threads) say more than wall seconds when
        # other work runs, and the load average says how much did.
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "runs": RUNS,
        "ingest_runs_seconds": [round(x["wall"], 2) for x in loads],
        "baseline_runs_seconds": [round(x["wall"], 2) for x in reads],
        "ingest_cpu_seconds": round(statistics.median(x["cpu"] for x in loads), 2),
        "baseline_cpu_seconds": round(statistics.median(x["cpu"] for x in reads), 2),
        "mixpanel_cpu_seconds": round(mixpanel["cpu"], 2),
        "records": RECORDS,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "ingest_seconds": round(ingest_s, 2),
        "ingest_records_per_s": round(RECORDS / ingest_s),
        "reload_seconds": round(reload["wall"], 2),
        "baseline_read_json_seconds": round(baseline_s, 2),
        "baseline_records_per_s": round(RECORDS / baseline_s),
        "ingest_vs_baseline_time_ratio": round(ingest_s / baseline_s, 2),
        "loaded": loads[-1]["loaded"],
        "quarantined": loads[-1]["quarantined"],
        "mixpanel_seconds": round(mixpanel["wall"], 2),
        "mixpanel_records_per_s": round(RECORDS / mixpanel["wall"]),
        "mixpanel_loaded": mixpanel["loaded"],
        "mixpanel_identity_seconds": round(mixpanel["identity_seconds"], 3),
    }


def _one_load(landing: Path, db: Path, day: dt.date, *how: str) -> dict:
    """One load in a process of its own; `how` "reload" reads the day even if unchanged."""
    return run_script(
        ROOT, ONE_LOAD, str(landing), str(db), day.isoformat(), json.dumps(ALIASES), *how
    )


def _identity(home: Path) -> list[dict]:
    """Ten days loaded in order; per load its seconds and those of identity resolution."""
    landing = home / "landing" / "events"
    conn = warehouse.connect(home / "warehouse.duckdb")
    loads = []
    try:
        for day in range(IDENTITY_DAYS):
            arrival = dt.date(2026, 3, 2) + dt.timedelta(days=day)
            path = landing / f"date={arrival}" / "events.jsonl"
            write_anonymous_day(path, day, RECORDS)
            started = time.perf_counter()
            result = load_partition(conn, landing, arrival)
            seconds = time.perf_counter() - started
            path.unlink()
            history, identities = conn.execute(
                "select (select count(*) from events), (select count(*) from identities)"
            ).fetchall()[0]
            loads.append(
                {
                    "day": day + 1,
                    "events_after": history,
                    "identities_after": identities,
                    "load_seconds": round(seconds, 2),
                    "identity_seconds": round(result.identity_seconds, 3),
                }
            )
            print(f"[ingest_bench] identity day {day + 1}: {loads[-1]}", flush=True)
    finally:
        conn.close()
    return loads


def _report(f: dict) -> str:
    rows = "\n".join(
        f"| {load['day']} | {load['events_after']:,} | {load['identities_after']:,} | "
        f"{load['load_seconds']:.2f} | {load['identity_seconds']:.3f} |"
        for load in f["identity_loads"]
    )
    return (
        "# Ingest benchmark\n\n"
        f"{f['records']:,} JSON-lines records ({f['file_mb']:.0f} MB), one arrival day, 2-core "
        "machine; vendor paths and two configured aliases on.\n\n"
        f"Load average {_loads(f['load_average_before'])} before, "
        f"{_loads(f['load_average_after'])} after (1, 5, 15 min).\n\n"
        f"Each load and each baseline read runs in a process of its own, into a fresh file; "
        f"the first and last rows are the medians of {f['runs']} runs, alternating "
        "(every run's seconds in brackets).\n\n"
        "| what | seconds | CPU seconds | records/s |\n|---|---|---|---|\n"
        "| eventpulse ingest (validate, dedup, quarantine, identity, atomic replace) | "
        f"{f['ingest_seconds']:.2f} ({_runs(f['ingest_runs_seconds'])}) | "
        f"{f['ingest_cpu_seconds']:.2f} | {f['ingest_records_per_s']:,} |\n"
        f"| re-load of the same day (replace) | {f['reload_seconds']:.2f} | - | "
        f"{f['records'] / f['reload_seconds']:,.0f} |\n"
        f"| a Mixpanel raw export, 20% anonymous (every field read from `properties`) | "
        f"{f['mixpanel_seconds']:.2f} | {f['mixpanel_cpu_seconds']:.2f} | "
        f"{f['mixpanel_records_per_s']:,} |\n"
        "| baseline: plain `read_json` into a table | "
        f"{f['baseline_read_json_seconds']:.2f} ({_runs(f['baseline_runs_seconds'])}) | "
        f"{f['baseline_cpu_seconds']:.2f} | {f['baseline_records_per_s']:,} |\n\n"
        f"Ingest takes {f['ingest_vs_baseline_time_ratio']:.2f}x the baseline's time. "
        f"Loaded {f['loaded']:,}, quarantined {f['quarantined']:,} (duplicates).\n\n"
        "## Identity resolution as history grows\n\n"
        f"Ten arrival days of {f['records']:,} records each, "
        f"{ANONYMOUS_SHARE:.0%} anonymous (a device id only), the rest identified users "
        "with their device (each links it). Identity resolution runs inside each load "
        "(`resolve_identities.sql`); its seconds are part of the load's.\n\n"
        "| load | events after | identities after | load seconds | identity seconds |\n"
        "|---:|---:|---:|---:|---:|\n"
        f"{rows}\n"
    )


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in seconds)


def _loads(averages: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in averages)


if __name__ == "__main__":
    main()
