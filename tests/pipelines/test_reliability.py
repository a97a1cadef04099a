"""Reliability end to end (issues 7, 19): kill -9 at any moment of `eventpulse run`, or of the
schedule's run, loses nothing and the next plain run finishes; an analyst can read the
warehouse while a run writes it."""

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import os
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

from assets.ingest.load import conservation_failures, duplicate_event_ids
from pipelines.definitions import defs
from pipelines.demo import generate
from pipelines.ui import write_instance_config
from pipelines.warehouse import WRITER_POOL

pytestmark = pytest.mark.slow

# Compared row by row; ingest_log holds wall-clock times and is left out.
TABLES = [
    "events",
    "quarantine",
    "users",
    "sessions",
    "daily_metrics",
    "funnel_steps",
    "funnel_daily",
    "retention",
    "cohorts",
    "anomalies",
]


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder built by the first pytest-xdist worker that needs it and read by every worker
    after it (the tests here are units of their own and run on either worker, conftest.py):
    one demo generated and one uninterrupted run for the session, not one a worker. Whoever
    reads it only copies or reads it; a test that writes works in its own copy."""
    # Under pytest-xdist each worker's basetemp sits in the session's own folder; without it the
    # parent is shared by every session, so a plain run keeps its builds in its own basetemp.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def landing_home(tmp_path_factory) -> Path:
    return built_once(
        tmp_path_factory, "landing-home", lambda home: generate(home, days=12, users=120, seed=11)
    )


def fresh_home(landing_home: Path, target: Path) -> Path:
    shutil.copytree(landing_home, target)
    return target


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "EVENTPULSE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}


def snapshot(home: Path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {t: conn.execute(f"select * from {t} order by all").fetchall() for t in TABLES}
    finally:
        conn.close()


def assert_consistent(home: Path) -> None:
    """The published warehouse opens and its blocking invariants hold."""
    path = home / "warehouse.duckdb"
    if not path.exists():
        return  # killed before the first publish: nothing published is a consistent state
    conn = duckdb.connect(str(path), read_only=True)
    try:
        assert conservation_failures(conn) == []
        assert duplicate_event_ids(conn) == 0
        tables = {r[0] for r in conn.execute("select table_name from duckdb_tables()").fetchall()}
        if "daily_metrics" in tables:
            mismatched = conn.execute(
                """
                select count(*) from daily_metrics m
                left join (select event_date, count(distinct user_id) n from events group by 1) e
                  on e.event_date = m.metric_date
                where m.dimension = 'all' and m.active_users <> coalesce(e.n, 0)
                """
            ).fetchall()[0][0]
            assert mismatched == 0
    finally:
        conn.close()


# Kill moments per path (issue 19 acceptance: 20 random moments across the run's length).
KILLS = 20


@pytest.fixture(scope="session")  # each test here may run on either worker (conftest.py)
def tiny_home(tmp_path_factory) -> Path:
    """A few days and a few hundred records: each kill and the run after it stay cheap."""
    return built_once(
        tmp_path_factory, "tiny-home", lambda home: generate(home, days=3, users=30, seed=11)
    )


@dataclasses.dataclass
class Uninterrupted:
    """One uninterrupted plain run over the tiny home."""

    tables: dict[str, list[tuple]]
    run_seconds: float
    warehouse_bytes: int


@pytest.fixture(scope="session")
def uninterrupted(tiny_home, tmp_path_factory) -> Uninterrupted:
    def run_once(folder: Path) -> None:
        home = fresh_home(tiny_home, folder / "home")
        started = time.monotonic()
        subprocess.run(cli(home, "run"), env=env_for(home), check=True, capture_output=True)
        (folder / "run_seconds").write_text(repr(time.monotonic() - started))

    folder = built_once(tmp_path_factory, "uninterrupted", run_once)
    home = folder / "home"
    seconds = float((folder / "run_seconds").read_text())
    return Uninterrupted(snapshot(home), seconds, (home / "warehouse.duckdb").stat().st_size)


def kill_moments(rng: random.Random, run_seconds: float) -> list[float]:
    """KILLS random delays spread over the whole run: one in each KILLS-th of its length."""
    return [run_seconds * (i + rng.random()) / KILLS for i in range(KILLS)]


class WarmEventpulse:
    """`eventpulse` commands forked from a process that has imported everything once
    (tests/pipelines/warm_eventpulse.py): real runs, killable as a process group."""

    def __init__(self, home: Path, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: list[int] = []
        helpers = Path(__file__).parent
        env = {**env_for(home), "PYTHONPATH": f"{helpers}{os.pathsep}{Path.cwd()}"}
        self.server = subprocess.Popen(
            [sys.executable, str(helpers / "warm_eventpulse.py")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._answer(timeout=900) == "ready"

    def start(self, command: str, argument: str) -> int:
        log = self.logs / f"{len(self.started):02d}-{command}.log"
        self.server.stdin.write(f"{command} {log} {argument}\n")
        self.server.stdin.flush()
        pid = int(self._answer(timeout=60))
        self.started.append(pid)
        return pid

    def wait(self, pid: int, timeout: float) -> int:
        self.server.stdin.write(f"wait {pid}\n")
        self.server.stdin.flush()
        return int(self._answer(timeout))

    def log_tail(self) -> str:
        return sorted(self.logs.iterdir())[-1].read_text()[-3000:]

    def _answer(self, timeout: float) -> str:
        ready, _, _ = select.select([self.server.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer in {timeout:.0f} s: a run hangs")
        return self.server.stdout.readline().strip()

    def close(self) -> None:
        for pid in self.started:  # a run still going after a failed assertion
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.server.stdin.close()
        self.server.wait(timeout=60)


@pytest.fixture
def warm(tmp_path) -> Iterator[Callable[[Path], WarmEventpulse]]:
    servers: list[WarmEventpulse] = []

    def start(home: Path) -> WarmEventpulse:
        servers.append(WarmEventpulse(home, tmp_path / "logs"))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def kill_at(eventpulse: WarmEventpulse, command: str, argument: str, moment: float) -> None:
    """Start a run and kill -9 its whole process group `moment` seconds later."""
    pid = eventpulse.start(command, argument)
    time.sleep(moment)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    eventpulse.wait(pid, timeout=60)


def timed_run(eventpulse: WarmEventpulse, command: str, argument: str, bound: float) -> float:
    """A run that must end by itself, successfully; returns its length. The bound only
    catches a hang (a run waiting for a dead run's slot or lock): never a speed assertion."""
    started = time.monotonic()
    pid = eventpulse.start(command, argument)
    assert eventpulse.wait(pid, timeout=bound) == 0, eventpulse.log_tail()
    return time.monotonic() - started


PLAIN_RUN = json.dumps(["run"])


def test_kill_9_at_20_moments_of_a_run_each_next_run_equals_an_uninterrupted_run(
    tiny_home, uninterrupted, tmp_path, warm
):
    expected, bound = uninterrupted.tables, max(600.0, 20 * uninterrupted.run_seconds)
    home = fresh_home(tiny_home, tmp_path / "crashed")
    eventpulse = warm(home)
    timed_run(eventpulse, "run", PLAIN_RUN, bound)
    assert snapshot(home) == expected
    # The first run embeds the whole corpus; the runs killed below are like the second.
    run_seconds = timed_run(eventpulse, "run", PLAIN_RUN, bound)
    for moment in kill_moments(random.Random(5), run_seconds):
        kill_at(eventpulse, "run", PLAIN_RUN, moment)
        assert_consistent(home)
        timed_run(eventpulse, "run", PLAIN_RUN, bound)
        assert not list((home / ".build").glob("warehouse-*"))  # no orphaned build
        assert snapshot(home) == expected, f"after a kill at {moment:.1f} s"


def test_kill_9_at_20_moments_of_the_schedules_run_each_next_run_equals_an_uninterrupted_run(
    tiny_home, uninterrupted, tmp_path, warm
):
    """The daemon's path: the daily schedule evaluated for a tick, its run request executed
    through the instance with the project's executor (a process per step, each publishing),
    under the instance config `eventpulse ui` writes (the warehouse pool of one slot). Each
    kill takes the run worker and its step processes, as when the machine loses them."""
    expected, bound = uninterrupted.tables, max(600.0, 20 * uninterrupted.run_seconds)
    home = fresh_home(tiny_home, tmp_path / "scheduled")
    write_instance_config(home / "dagster")
    last_day = max(p.name[5:] for p in (home / "landing" / "events").iterdir())
    tick = f"{dt.date.fromisoformat(last_day) + dt.timedelta(days=1)}T00:30:00+00:00"
    eventpulse = warm(home)
    timed_run(eventpulse, "schedule", tick, bound)
    timed_run(eventpulse, "run", PLAIN_RUN, bound)
    assert snapshot(home) == expected
    # Like the runs killed below: over a complete warehouse and corpus.
    scheduled_seconds = timed_run(eventpulse, "schedule", tick, bound)
    assert_writers_took_turns_unblocked(home / "dagster")
    for moment in kill_moments(random.Random(6), scheduled_seconds):
        kill_at(eventpulse, "schedule", tick, moment)
        assert_consistent(home)
        timed_run(eventpulse, "run", PLAIN_RUN, bound)
        assert snapshot(home) == expected, f"after a kill at {moment:.1f} s"


def assert_writers_took_turns_unblocked(dagster_home: Path) -> None:
    """In every scheduled run of the instance, the warehouse writers ran one at a time, and none waited
    for the pool: the executor held the second back (pipelines/warehouse.py WRITER_TAGS), so
    Dagster never refused a claim, which it re-tries only a second or more later."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    writers = {a.op.name for a in defs.assets if a.op.pool == WRITER_POOL}
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        runs = [r for r in instance.get_runs() if "dagster/schedule_name" in r.tags]
        assert runs
        for run in runs:
            spans: dict[str, list[float]] = {}
            for entry in instance.all_logs(run.run_id):
                assert "blocked by limit for pool" not in entry.user_message, entry.user_message
                if entry.is_dagster_event and entry.step_key in writers:
                    kind = entry.dagster_event.event_type_value
                    if kind in ("STEP_START", "STEP_SUCCESS"):
                        spans.setdefault(entry.step_key, []).append(entry.timestamp)
            assert set(spans) == writers and all(len(s) == 2 for s in spans.values()), spans
            ordered = sorted(spans.values())
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered)), spans


def plain_run_finishes(home: Path, run_seconds: float) -> None:
    """A plain `eventpulse run` (a fresh process) ends by itself, successfully; the bound only
    catches a hang, never a speed assertion."""
    done = subprocess.run(
        cli(home, "run"),
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=max(600.0, 20 * run_seconds),
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_reports_and_corpus_are_written_after_the_run_publishes_the_warehouse(tiny_home, tmp_path):
    """Reports and corpus read the published warehouse, never the run's private build: a kill
    before the publish leaves no report or chunk about data that was not published."""
    home = fresh_home(tiny_home, tmp_path / "order")
    log = tmp_path / "order.log"
    script = tmp_path / "ordered_run.py"
    script.write_text(
        "import os, sys\n"
        "import assets.corpus.store as store\n"
        "import assets.reports.build as reports\n"
        "from pipelines import warehouse\n"
        "LOG = sys.argv[1]\n"
        "def noting(module, name):\n"
        "    original = getattr(module, name)\n"
        "    def noted(*args, **kwargs):\n"
        "        in_build = os.environ.get(warehouse.RUN_BUILD_ENV) is not None\n"
        "        with open(LOG, 'a') as log:\n"
        "            log.write(f'{name} {in_build}\\n')\n"
        "        return original(*args, **kwargs)\n"
        "    setattr(module, name, noted)\n"
        "noting(reports, '_build_report')\n"
        "noting(store, 'build_corpus')\n"
        "noting(warehouse, '_publish')\n"
        "sys.argv = ['eventpulse', 'run']\n"
        "from pipelines.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(log)], env=env_for(home), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    calls = log.read_text().split()[::2]
    in_build = log.read_text().split()[1::2]
    assert calls[0] == "_publish" and calls.count("_publish") == 1
    # One call a report (3 days), each in this process: a few reports are written without
    # worker processes.
    assert calls.count("_build_report") == 3 and calls[-1] == "build_corpus"
    assert set(in_build[1:]) == {"False"}  # read from the published file


def test_a_disk_full_run_says_one_sentence_and_the_next_run_recovers_unattended(
    tiny_home, uninterrupted, tmp_path
):
    """A full disk, simulated by a file-size limit on the run's process (RLIMIT_FSIZE: its
    writes past half the finished warehouse's size fail, as on a full disk)."""
    home = fresh_home(tiny_home, tmp_path / "disk-full")
    limit = uninterrupted.warehouse_bytes // 2

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run(
        cli(home, "run"),
        env={**env_for(home), "COLUMNS": "100000"},  # the sentence on one line
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=600,
    )
    assert full.returncode == 1
    assert "Traceback" not in full.stderr
    said = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1, full.stderr
    sentence = " ".join(full.stderr[full.stderr.index("error:") :].split())
    assert "the disk is full" in sentence and "free space" in sentence
    assert sentence.endswith("(nothing half-written was published).")
    assert_consistent(home)
    plain_run_finishes(home, uninterrupted.run_seconds)
    assert snapshot(home) == uninterrupted.tables
    assert not list((home / ".build").glob("warehouse-*"))  # no orphaned build


def test_an_open_reader_never_blocks_a_run_and_queries_answer_meanwhile(landing_home, tmp_path):
    home = fresh_home(landing_home, tmp_path / "busy")
    first_days = sorted(p.name[5:] for p in (home / "landing" / "events").iterdir())[:3]
    subprocess.run(
        cli(home, "run", "--start", first_days[0], "--end", first_days[-1]),
        env=env_for(home),
        check=True,
        capture_output=True,
    )
    before = dict(
        duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        .execute("select arrival_date::varchar, count(*) from events group by 1")
        .fetchall()
    )
    analyst = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"c = duckdb.connect({str(home / 'warehouse.duckdb')!r}, read_only=True)\n"
            "print(c.execute('select count(*) from events').fetchall(), flush=True)\n"
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert analyst.stdout.readline().startswith("[(")
    run = subprocess.Popen(
        cli(home, "run"), env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    latencies: list[float] = []
    while run.poll() is None:
        started = time.monotonic()
        answer = subprocess.run(
            cli(
                home,
                "query",
                "select arrival_date::varchar, count(*) from events group by 1",
                "--format",
                "csv",
            ),
            env=env_for(home),
            capture_output=True,
            text=True,
        )
        assert answer.returncode == 0, answer.stderr
        latencies.append(time.monotonic() - started)  # reported, not asserted: no wall-clock tests
        seen = dict(line.split(",") for line in answer.stdout.splitlines()[1:])
        for day, rows in before.items():
            assert int(seen.get(day, 0)) >= rows
    analyst.kill()
    assert run.returncode == 0, run.stdout.read()
    assert latencies
    print(f"{len(latencies)} queries during the run, slowest {max(latencies):.1f} s")


def test_concurrent_runs_take_turns_and_all_succeed(landing_home, tmp_path):
    home = fresh_home(landing_home, tmp_path / "concurrent")
    days = sorted(p.name[5:] for p in (home / "landing" / "events").iterdir())[:3]
    runs = [
        subprocess.Popen(
            cli(home, "run", "--date", day),
            env=env_for(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for day in days
    ]
    for run in runs:
        output = run.communicate()[0]
        assert run.returncode == 0, output.decode()[-2000:]
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    loaded = {r[0] for r in conn.execute("select arrival_date::varchar from ingest_log").fetchall()}
    assert loaded == set(days)


def test_multiprocess_backfill_with_a_reader_holding_the_file(landing_home, tmp_path):
    home = fresh_home(landing_home, tmp_path / "multiprocess")
    script = tmp_path / "backfill.py"
    # The __main__ guard matters: executor processes re-import the main module.
    script.write_text(
        "import sys\n"
        "import dagster as dg\n"
        "from multiprocess_job import warehouse_job\n"
        "if __name__ == '__main__':\n"
        "    days = sys.argv[1:]\n"
        "    tags = {'dagster/asset_partition_range_start': days[0],\n"
        "            'dagster/asset_partition_range_end': days[-1]}\n"
        "    result = dg.execute_job(\n"
        "        dg.reconstructable(warehouse_job), instance=dg.DagsterInstance.get(), tags=tags\n"
        "    )\n"
        "    sys.exit(0 if result.success else 1)\n"
    )
    days = sorted(p.name[5:] for p in (home / "landing" / "events").iterdir())
    subprocess.run(
        cli(home, "run", "--date", days[0]), env=env_for(home), check=True, capture_output=True
    )
    analyst = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    env = {**env_for(home), "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{Path.cwd()}"}
    done = subprocess.run(
        [sys.executable, str(script), days[0], days[-1]], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert analyst.execute("select count(distinct arrival_date) from events").fetchall() == [(1,)]
    analyst.close()
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert conn.execute("select count(distinct arrival_date) from ingest_log").fetchall() == [
        (len(days),)
    ]
    assert conservation_failures(conn) == []
