"""kill -9 at each point of the standby's catch-up and of the publish (issue 14, item 4) loses
nothing: the published warehouse is the last publish or the new one, whole; the next writer
starts from a file equal to it (caught up or copied), and the tables end as an uninterrupted
sequence of the same runs leaves them."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from random_arrivals import DAYS, random_record, write_day
from test_standby import assert_equals_published, table_rows

from assets.ingest.load import load_partition
from assets.marts.cohorts import update_cohorts
from assets.marts.metrics import update_daily_metrics
from assets.marts.sessions_users import update_sessions, update_users
from pipelines import warehouse
from pipelines.settings import Settings

SETTINGS = Settings(home=Path("."))
STEP_DAYS = [DAYS[2], DAYS[0], DAYS[4], DAYS[1], DAYS[0]]  # out of order, a re-load at the end

# Where the child pauses to be killed: (what it wraps, when). A pause "before" a function
# stops the process just before that call.
POINTS = {
    "standby renamed, catch-up not begun": "warehouse._catch_up",
    "mid catch-up transaction": "journal._apply#4",
    "caught up, build not written": "warehouse.start_build:after",
    "build written, before the hard link": "os.link",
    "standby linked, identities not written": "warehouse._write_files",
    "identities written, before the rename": "os.replace:publish",
    "renamed, directory not synced": "warehouse._fsync_directory",
}

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {helpers!r}]
    from pipelines import journal, warehouse
    from test_reliability_standby import run_step

    home, day, point = Path({home!r}), {day!r}, {point!r}
    target, _, when = point.partition(":")
    target, _, nth = target.partition("#")
    module_name, name = target.split(".")
    module = {{"warehouse": warehouse, "journal": journal, "os": os}}[module_name]
    original = getattr(module, name)
    calls = []

    def pause():
        print("paused", flush=True)
        time.sleep(120)

    def wrapped(*args, **kwargs):
        calls.append(1)
        is_publish = when != "publish" or (
            Path(args[0]).name.startswith("warehouse-") and Path(args[1]).parent == home
        )
        if when != "after" and is_publish and len(calls) >= int(nth or 1):
            pause()
        result = original(*args, **kwargs)
        if when == "after":
            pause()
        return result

    setattr(module, name, wrapped)
    run_step(home, day)
    print("finished", flush=True)
    """
)


def run_step(home: Path, day: str) -> None:
    """One run's warehouse steps in one publish: the day's load, then the marts."""
    with warehouse.writer(home) as conn:
        load_partition(conn, home / "landing" / "events", _date(day))
        update_sessions(conn, SETTINGS)
        update_users(conn, SETTINGS)
        update_daily_metrics(conn, SETTINGS)
        update_cohorts(conn, SETTINGS)


def _date(day: str) -> dt.date:
    return dt.date.fromisoformat(day)


def make_home(folder: Path) -> Path:
    rng = random.Random(7)
    shared: list[str] = []
    landing = folder / "landing" / "events"
    for day in sorted(set(STEP_DAYS)):
        write_day(landing, day, [random_record(rng, day, shared) for _ in range(30)])
    return folder


def published_rows(home: Path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(warehouse.published_path(home)), read_only=True)
    try:
        rows = table_rows(conn, conn.execute("select current_database()").fetchall()[0][0])
    finally:
        conn.close()
    # ingest_log holds wall-clock times: its other columns are compared. load_fingerprints
    # hashes the landing files' times, which differ between two homes: its days are compared.
    rows["ingest_log"] = [row[:6] for row in rows["ingest_log"]]
    rows["load_fingerprints"] = [row[:1] for row in rows["load_fingerprints"]]
    return rows


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict[str, list[tuple]]]:
    """The published tables after each step of the uninterrupted sequence."""
    home = make_home(tmp_path_factory.mktemp("uninterrupted"))
    states = []
    for day in STEP_DAYS:
        run_step(home, str(day))
        states.append(published_rows(home))
    return states


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_each_point_of_catch_up_and_publish_loses_nothing(
    tmp_path: Path, uninterrupted: list[dict[str, list[tuple]]], point: str
) -> None:
    home = make_home(tmp_path / "home")
    for day in STEP_DAYS[:3]:  # three publishes: the standby exists and is one behind
        run_step(home, str(day))
    assert (warehouse.build_dir(home) / warehouse.STANDBY).exists()
    script = CHILD.format(
        tests=str(Path(__file__).parent),
        helpers=str(Path(__file__).parent.parent),
        home=str(home),
        day=str(STEP_DAYS[3]),
        point=POINTS[point],
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert child.stdout.readline().strip() == "paused", point
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    # The published warehouse is the last publish, or (killed after the rename) the new one.
    after_kill = published_rows(home)
    assert after_kill in (uninterrupted[2], uninterrupted[3]), point
    done = 4 if after_kill == uninterrupted[3] else 3
    # The next writers start from a file equal to the published one, whatever the kill left.
    for day in STEP_DAYS[done:]:
        with warehouse.writer(home) as conn:
            assert_equals_published(conn, home, f"after a kill at {point}")
        run_step(home, str(day))
    assert published_rows(home) == uninterrupted[-1], point
    assert not list(warehouse.build_dir(home).glob("warehouse-*"))  # no orphaned build
