"""The DuckDB warehouse: one writer at a time, readers never blocked, crashes lose nothing.

DuckDB lets one process write a file and blocks even read-only opens meanwhile. So no run
ever writes `warehouse.duckdb` itself: a writer copies the published file to a private build
file under `.build/`, writes there, checkpoints, and publishes by atomic rename. Readers
(`eventpulse query`, an analyst's `duckdb -readonly`) keep the snapshot they opened; a
`kill -9` at any moment leaves the published file as the last successful publish, and the
next writer deletes the orphaned build files.

Two scopes of publish:
- `eventpulse run` holds one build for the whole run (`run_build`), so the published
  warehouse always matches a complete, successful run.
- Runs started elsewhere (Dagster UI, schedules, sensors) publish after each asset step
  (`writer`); each step is still atomic.

Cost: every publish copies the warehouse once (about 1 s per GB on local disk).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.errors import EventpulseError
from pipelines.sql import run_sql_file

RUN_BUILD_ENV = "EVENTPULSE_RUN_BUILD"
LOCK_WAIT_SECONDS = float(os.environ.get("EVENTPULSE_LOCK_WAIT_SECONDS", 1800))
CONNECTION_CONFIG = {"python_enable_replacements": False}


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the project's settings (UTC session time zone)."""
    conn = duckdb.connect(str(path), read_only=read_only, config=dict(CONNECTION_CONFIG))
    # Not in `config`: ICU (built in) is loaded only after connect. Naive timestamps and
    # TIMESTAMPTZ -> TIMESTAMP conversions then mean UTC whatever the machine's zone.
    conn.execute("set TimeZone = 'UTC'")
    conn.execute("set enable_progress_bar = false")
    return conn


def prepare_base_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the tables every writer needs (ingest's tables, `user_keys`, `keyed_events`) and
    bring those of an earlier version up to date (`sql/staging/tables.sql`)."""
    run_sql_file(conn, "staging/tables.sql")
    nullable = conn.execute(
        "select is_nullable from duckdb_columns() "
        "where database_name = current_database() and schema_name = 'main' "
        "and table_name = 'event_copies' and column_name = 'user_key'"
    ).fetchall()
    if nullable[0][0]:
        run_sql_file(conn, "staging/migrate_user_keys.sql")


def published_path(home: Path) -> Path:
    return home / "warehouse.duckdb"


def build_dir(home: Path) -> Path:
    return home / ".build"


@contextlib.contextmanager
def writer(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one write step; its changes are published when the block succeeds."""
    run_build_file = os.environ.get(RUN_BUILD_ENV)
    if run_build_file:
        # Inside `eventpulse run`: the CLI holds the lock and publishes once at the end.
        conn = connect(Path(run_build_file))
        try:
            yield conn
            conn.execute("checkpoint")
        finally:
            conn.close()
        return
    with writer_lock(home):
        build = _start_build(home)
        conn = connect(build)
        try:
            yield conn
            conn.execute("checkpoint")
        except BaseException:
            conn.close()
            build.unlink(missing_ok=True)
            raise
        conn.close()
        _publish(build, published_path(home))


@contextlib.contextmanager
def run_build(home: Path, locked: bool = False) -> Iterator[Path]:
    """Hold the writer lock for a whole run; every `writer()` in it writes one build file,
    published when the block succeeds. `locked`: the caller already holds the writer lock."""
    with contextlib.nullcontext() if locked else writer_lock(home):
        build = _start_build(home)
        os.environ[RUN_BUILD_ENV] = str(build)
        try:
            yield build
        except BaseException:
            build.unlink(missing_ok=True)
            raise
        finally:
            os.environ.pop(RUN_BUILD_ENV, None)
        _publish(build, published_path(home))


@contextlib.contextmanager
def reader(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only view of the latest state: the run's build inside a run, else the published file."""
    run_build_file = os.environ.get(RUN_BUILD_ENV)
    if run_build_file:
        # Same process as the run's writers: DuckDB needs one configuration per file per process.
        conn = connect(Path(run_build_file))
    else:
        path = published_path(home)
        if not path.exists():
            raise EventpulseError(
                f"No warehouse at {path} yet; run `eventpulse run` (or `make demo`) first."
            )
        conn = connect(path, read_only=True)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def writer_lock(home: Path, wait_seconds: float | None = None) -> Iterator[None]:
    """The single-writer lock of the warehouse."""
    home.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(home / ".warehouse.lock", "the warehouse write lock", wait_seconds):
        yield


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, what: str, wait_seconds: float | None = None) -> Iterator[None]:
    """An exclusive flock on `lock_path` (released by the kernel even on kill -9); waits up to
    `wait_seconds` for another holder, then says so in one sentence."""
    wait_seconds = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait_seconds
    with open(lock_path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EventpulseError(
                        f"Another eventpulse run has held {what} ({lock_path}) for over "
                        f"{wait_seconds:.0f} s; wait for it to finish or stop it."
                    ) from None
                # Jitter so that several waiting runs do not retry in lockstep.
                time.sleep(0.05 + random.random() * 0.25)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_build(home: Path) -> Path:
    """Under the lock: drop builds orphaned by crashed runs, copy the published file."""
    folder = build_dir(home)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    build = folder / f"warehouse-{uuid.uuid4().hex}.duckdb"
    published = published_path(home)
    if published.exists():
        shutil.copyfile(published, build)
    return build


def _publish(build: Path, published: Path) -> None:
    with open(build, "rb") as handle:
        os.fsync(handle.fileno())
    # A write-ahead log beside the published file is left by someone who wrote to it directly
    # (an analyst without -readonly whose session ended uncleanly). It belongs to the file being
    # replaced: beside the new one, every reader would fail on it.
    published.with_name(published.name + ".wal").unlink(missing_ok=True)
    os.replace(build, published)
    directory = os.open(published.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
