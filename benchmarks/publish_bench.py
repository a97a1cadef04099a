"""Benchmark: the cost of a publish (issue 14, item 4), with 60 and with 360 days of history.

A publish used to copy the whole published `warehouse.duckdb` into the next build (and fsync
it); now the next build is the standby (the file published before, hard-linked) caught up by
the published file's journal (pipelines/journal.py). For each prepared demo history of
benchmarks/daily_run_bench.py (60 days x 5,000 users, 360 days x 20,000 users; about 7,000
records a day at the end of both):

1. Setup, on a copy of the history's warehouse: its two held-back arrival days run one after
   the other, each as `eventpulse run`'s warehouse steps in one build (`run_build`: ingest of
   the day, the incremental marts, funnels, retention, anomalies). The second publish leaves
   what a daily run leaves: the published file with the journal of a real day, and the
   standby one generation behind.
2. Timed, alternately `REPEATS` times from that same state (restored from a snapshot, fsynced):
   - "caught up": `start_build` (the standby caught up by the journal in one transaction) and
     `publish` (fsync, the hard link, the rename) with nothing written between them;
   - "copy": what main did at the same points (`_start_build` copied the published file,
     `_publish` fsynced the copy and renamed it), the same code inlined here.

Wall seconds and CPU seconds of this process (the copy's kernel time included) are reported
with the load average; the machine is shared, so read the ratios. Run:
`.venv/bin/python -m benchmarks.publish_bench` (part of `make bench`); the histories come from
$EVENTPULSE_BENCH_CACHE/eventpulse-daily-run-bench (made by daily_run_bench the first time).
Writes `benchmarks/results/publish_bench.md` and `.json`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import score_changed_days
from assets.ingest.load import load_partition
from assets.marts.cohorts import update_cohorts
from assets.marts.funnels import update_funnels
from assets.marts.metrics import update_daily_metrics
from assets.marts.retention import update_retention
from assets.marts.sessions_users import update_sessions, update_users
from benchmarks.daily_run_bench import HISTORIES, prepared_history, write_run_results
from pipelines import journal, warehouse
from pipelines.settings import Settings

REPEATS = 3
# A bigger file than the histories, cheaply: the 360-day history with event_copies padded to
# PADDED[2] times its rows by archived copies (not kept, so no table built from `events`
# changes) under arrival days before the history, which no day's journal touches. Only the
# start and the publish are timed on it.
PADDED = (360, 20000, 4)


def main(only_days: list[int] | None = None) -> None:
    """Every history, or only those of `only_days` (`python -m benchmarks.publish_bench 60`)."""
    cache = Path(os.environ.get("EVENTPULSE_BENCH_CACHE", tempfile.gettempdir()))
    cache = cache / "eventpulse-daily-run-bench"
    cache.mkdir(parents=True, exist_ok=True)
    scratch_root = Path(os.environ.get("EVENTPULSE_BENCH_SCRATCH", tempfile.gettempdir()))
    runs = [
        bench_history(cache, scratch_root, days, users, pad)
        for days, users, pad in [*((d, u, 1) for d, u in HISTORIES), PADDED]
        if not only_days or days in only_days
    ]
    write_run_results("publish", runs, markdown)


def bench_history(cache: Path, scratch_root: Path, days: int, users: int, pad: int) -> dict:
    history = prepared_history(cache, days, users)  # read only: everything runs on copies
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        home = Path(scratch) / "home"
        landing = home / "landing" / "events"
        landing.mkdir(parents=True)
        shutil.copyfile(history / "warehouse.duckdb", warehouse.published_path(home))
        if pad > 1:
            pad_event_copies(warehouse.published_path(home), pad)
        settings = Settings(home=home)
        held = sorted((history / "held").iterdir())
        first, second = (dt.date.fromisoformat(f.name.split("=")[1]) for f in held)
        # The first held day arrives in two parts (a day's late files, run again): the first
        # run brings every step to this code and creates its tables, the second leaves a
        # real day's journal with the standby one generation behind, with the same schema.
        files = sorted(held[0].iterdir())
        (landing / held[0].name).mkdir()
        for part in (files[: len(files) // 2], files[len(files) // 2 :]):
            for file in part:
                shutil.copyfile(file, landing / held[0].name / file.name)
            run_day(home, settings, first)
        shutil.copytree(held[1], landing / held[1].name)
        snapshot = Path(scratch) / "snapshot"
        snapshot.mkdir()
        standby = warehouse.build_dir(home) / warehouse.STANDBY
        shutil.copyfile(warehouse.published_path(home), snapshot / "published.duckdb")
        shutil.copyfile(standby, snapshot / "standby.duckdb")
        entries = journal_entries(warehouse.published_path(home))
        timed_ways = {n: w for n, w in WAYS.items() if pad == 1 or not w[1]}
        ways: dict[str, list[dict]] = {name: [] for name in timed_ways}
        load = [os.getloadavg()[0]]
        for _ in range(REPEATS):
            for name, (way, with_run) in timed_ways.items():
                restore(home, snapshot)
                day = second if with_run else None
                ways[name].append(timed(way, home, settings, day))
            load.append(os.getloadavg()[0])
        return {
            "history_days": days,
            "users": users,
            "padded": pad,
            "warehouse_bytes": (snapshot / "published.duckdb").stat().st_size,
            "journal": entries,
            **{name: summary(samples) for name, samples in ways.items()},
            "load_average": [round(x, 1) for x in load],
        }


def pad_event_copies(path: Path, times: int) -> None:
    conn = warehouse.connect(path)
    try:
        conn.execute(
            """
            insert into event_copies
            select event_copies.* replace (
                event_id || '~' || k as event_id,
                (arrival_date - (400 * k)::integer)::date as arrival_date,
                false as kept
            )
            from event_copies, range(1, $times) as r(k)
            """,
            {"times": times},
        )
        conn.execute("checkpoint")
    finally:
        conn.close()


def run_day(home: Path, settings: Settings, day: dt.date) -> None:
    """The warehouse steps of `eventpulse run --date day`, in one build."""
    with warehouse.run_build(home), warehouse.writer(home) as conn:
        load_partition(conn, settings.landing_dir, day, settings.aliases, settings.timezone)
        update_sessions(conn, settings)
        update_users(conn, settings)
        update_daily_metrics(conn, settings)
        update_cohorts(conn, settings)
        update_funnels(conn, settings)
        update_retention(conn, settings.retention, settings.timezone)
        write_anomalies(conn, score_changed_days(conn, settings.anomalies), settings.anomalies)


def start_and_publish(home: Path) -> None:
    """A build in which nothing is written: the start and the publish alone."""
    with warehouse.run_build(home):
        pass


def journal_entries(path: Path) -> list[dict]:
    conn = warehouse.connect(path, read_only=True)
    try:
        rows = conn.execute(
            f"select table_name, coalesce(key_column, 'whole table'), "
            f"count(distinct key_value) from {journal.JOURNAL} group by all order by all"
        ).fetchall()
    finally:
        conn.close()
    return [{"table": t, "key": k, "keys": n} for t, k, n in rows]


def restore(home: Path, snapshot: Path) -> None:
    """The state a daily run's publish leaves: the published file, the standby one generation
    behind, and their identities, as `publish` records them (fsynced, so that neither way
    pays for the restore's writes)."""
    folder = warehouse.build_dir(home)
    for leftover in folder.iterdir():
        warehouse._remove(leftover)
    published, standby = warehouse.published_path(home), folder / warehouse.STANDBY
    for source, target in (
        (snapshot / "published.duckdb", published),
        (snapshot / "standby.duckdb", standby),
    ):
        target.unlink(missing_ok=True)
        shutil.copyfile(source, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
    files = {"published": warehouse._identity(published), "standby": warehouse._identity(standby)}
    warehouse._write_files(folder, files)


def caught_up(home: Path, settings: Settings, day: dt.date | None) -> None:
    """This code: the standby caught up by the journal, (the day's steps,) the publish."""
    start = warehouse.start_build

    def checked(home: Path) -> warehouse.Build:
        build = start(home)
        if not build.caught_up:
            sys.exit(f"publish_bench: the standby was not caught up: {build.copy_reason}")
        return build

    warehouse.start_build = checked
    try:
        run_day(home, settings, day) if day else start_and_publish(home)
    finally:
        warehouse.start_build = start


def copied(home: Path, settings: Settings, day: dt.date | None) -> None:
    """main's way (99cef9a), inlined: copy the published file into the build, (the day's
    run,) fsync the build, rename it over the published file, fsync the folder."""
    start, publish = warehouse.start_build, warehouse._publish
    warehouse.start_build, warehouse._publish = copy_build, copy_publish
    try:
        run_day(home, settings, day) if day else start_and_publish(home)
    finally:
        warehouse.start_build, warehouse._publish = start, publish


def copy_build(home: Path) -> warehouse.Build:
    build = warehouse.build_dir(home) / f"warehouse-{uuid.uuid4().hex}.duckdb"
    shutil.copyfile(warehouse.published_path(home), build)
    return warehouse.Build(build, "main's copy")


def copy_publish(build: Path, home: Path) -> None:
    published = warehouse.published_path(home)
    with open(build, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(build, published)
    warehouse._fsync_directory(published.parent)


# name: (way, with the day's run between the start and the publish)
WAYS: dict[str, tuple[Callable[[Path, Settings, dt.date | None], None], bool]] = {
    "caught_up": (caught_up, False),
    "copy": (copied, False),
    "caught_up_run": (caught_up, True),
    "copy_run": (copied, True),
}


def timed(work: Callable[..., None], *args: object) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    work(*args)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}


def summary(samples: list[dict]) -> dict:
    return {
        "median_seconds": statistics.median(s["seconds"] for s in samples),
        "median_cpu_seconds": statistics.median(s["cpu_seconds"] for s in samples),
        "samples": samples,
    }


ROWS = {
    "caught_up": "**start + publish, caught up** (standby + journal; nothing written)",
    "copy": "start + publish, copy (main's way; nothing written)",
    "caught_up_run": "**the day's warehouse steps, caught up** (start, the steps, publish)",
    "copy_run": "the day's warehouse steps, copy (main's way)",
}


def markdown(runs: list[dict], machine: dict) -> str:
    heads = " | ".join(
        f"{r['history_days']} days of history"
        + (f", event_copies padded {r['padded']}x" if r["padded"] > 1 else "")
        for r in runs
    )
    lines = [
        "# Publish benchmark (issue 14, item 4)",
        "",
        f"DuckDB {machine['duckdb']}, {machine['cpus']} CPUs, Python {machine['python']}, a "
        "machine shared with other work (noisy: the ways are timed alternately, median of "
        f"{REPEATS}, wall / CPU seconds of the process, kernel time included). The state a "
        "daily run leaves (the first held-back day of the demo history run as `eventpulse "
        "run`'s warehouse steps: the published file with that day's journal, the standby one "
        "generation behind), then the next writer: its start and a publish with nothing "
        "written, and the whole warehouse part of the next day's run (ingest of the second "
        "held-back day, the incremental marts, funnels, retention, anomalies). Command: "
        "`.venv/bin/python -m benchmarks.publish_bench` (part of `make bench`).",
        "",
        f"| | {heads} |",
        "|---|" + "---:|" * len(runs),
        "| `warehouse.duckdb` | "
        + " | ".join(f"{r['warehouse_bytes'] / 1e6:,.0f} MB" for r in runs)
        + " |",
    ]
    for name, label in ROWS.items():
        lines.append(
            f"| {label} | "
            + " | ".join(
                f"{r[name]['median_seconds']:.2f} s / {r[name]['median_cpu_seconds']:.2f} s"
                if name in r
                else "-"
                for r in runs
            )
            + " |"
        )
    lines += [
        "| load average during the runs | "
        + " | ".join(f"{min(r['load_average'])}-{max(r['load_average'])}" for r in runs)
        + " |",
        "",
        "The journal the catch-up applied (the first held day's changes; `whole table`: copied "
        "whole):",
        "",
    ]
    for run in runs:
        lines.append(
            f"- {run['history_days']} days"
            + (f", padded {run['padded']}x" if run["padded"] > 1 else "")
            + ": "
            + ", ".join(
                f"{e['table']} ({e['key']}" + (f", {e['keys']:,} keys)" if e["keys"] else ")")
                for e in run["journal"]
            )
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or None)
