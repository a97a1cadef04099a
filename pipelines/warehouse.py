"""The DuckDB warehouse: one writer at a time, readers never blocked, crashes lose nothing.

DuckDB lets one process write a file and blocks even read-only opens meanwhile. So no run
ever writes `warehouse.duckdb` itself: a writer writes a private build file under `.build/`,
checkpoints, and publishes it by atomic rename. Readers (`eventpulse query`, an analyst's
`duckdb -readonly`) keep the snapshot they opened; a `kill -9` at any moment leaves the
published file as the last successful publish, and the next writer deletes what it left.

Double-buffered, so a publish copies nothing (issue 14). Two files: the published one
(generation g) and the standby `.build/standby.duckdb`, the file published before it
(generation g-1), kept at publish time by a hard link. A build records what it changes in a
journal inside the file (pipelines/journal.py). The next writer renames the standby to its
build file and catches it up by the published file's journal, in one transaction; the build
is then written into it. It copies the published file instead, as before, whenever the
standby cannot be trusted: none yet, a reader still holding it (DuckDB's file lock refuses the
write), not exactly one generation behind, another schema (a migration), either file written
since eventpulse published it (`files.json` holds their inode, size and mtime), or row counts
that differ after the catch-up. Publish = checkpoint, fsync, hard-link the published file as
the next standby, rename the build over it.

kill -9 at any point: before the rename the published file is untouched; a half caught-up or
half-written build is an orphan under its own name (deleted by the next writer, which then
copies); a standby linked without its identity written, or identities written before the
rename, do not match the files and mean a copy. The generation numbers inside the files and
the identities decide what a file is, never a guess.

Two scopes of publish:
- `eventpulse run` holds one build for the whole run (`run_build`), so the published
  warehouse always matches a complete, successful run.
- Runs started elsewhere (Dagster UI, schedules, sensors) publish after each asset step
  (`writer`); each step is still atomic, and each catches up what the step before changed.

Cost: the catch-up replaces the journaled rows (a day's arrival days, its persons' sessions
and users, ...) and copies the small tables whole (benchmarks/publish_bench.py); a copy was
about 1 s per GB. Disk: the standby is a second full file, where the copy was a transient one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines import journal
from pipelines.errors import EventpulseError
from pipelines.sql import first_time, run_sql_file

RUN_BUILD_ENV = "EVENTPULSE_RUN_BUILD"
LOCK_WAIT_SECONDS = float(os.environ.get("EVENTPULSE_LOCK_WAIT_SECONDS", 1800))
CONNECTION_CONFIG = {"python_enable_replacements": False}
# In Dagster, every asset that writes this file is in the WRITER_POOL pool, to which the instance
# config of `eventpulse ui` gives one slot (one such step at a time across runs), and carries
# WRITER_TAGS, which the project's executor lets one step at a time have within a run
# (pipelines/definitions.py). Without that limit a run's second writer would claim the slot
# and be refused: Dagster re-tries a refused claim only after a second or more, its run worker
# spinning on a core meanwhile (~1.8 s of an 11 s scheduled run on a tiny home).
WRITER_POOL = "warehouse"
WRITER_TAGS = {"eventpulse/writes": "warehouse"}
# The keyword arguments of every asset that writes the warehouse: `@dg.asset(..., **WRITER_ASSET)`.
WRITER_ASSET = {"pool": WRITER_POOL, "op_tags": WRITER_TAGS}
# Under .build/: the previous published file (a hard link) and the identity of both files.
STANDBY = "standby.duckdb"
FILES = "files.json"


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
    bring those of an earlier version up to date (`sql/staging/tables.sql`); once inside
    `pipelines.sql.setup_once`."""
    if not first_time(conn, "staging/tables.sql"):
        return
    run_sql_file(conn, "staging/tables.sql")
    nullable = conn.execute(
        "select is_nullable from duckdb_columns() "
        "where database_name = current_database() and schema_name = 'main' "
        "and table_name = 'event_copies' and column_name = 'user_key'"
    ).fetchall()
    if nullable[0][0]:
        run_sql_file(conn, "staging/migrate_user_keys.sql")
        journal.record_whole(conn, "event_copies")
        journal.record_whole(conn, "user_keys")


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
        build = start_build(home).path
        conn = connect(build)
        try:
            yield conn
            conn.execute("checkpoint")
        except BaseException:
            conn.close()
            _discard(build)
            raise
        conn.close()
        _publish(build, home)


@contextlib.contextmanager
def run_build(home: Path, locked: bool = False) -> Iterator[Path]:
    """Hold the writer lock for a whole run; every `writer()` in it writes one build file,
    published when the block succeeds. `locked`: the caller already holds the writer lock."""
    with contextlib.nullcontext() if locked else writer_lock(home):
        build = start_build(home).path
        os.environ[RUN_BUILD_ENV] = str(build)
        try:
            yield build
        except BaseException:
            _discard(build)
            raise
        finally:
            os.environ.pop(RUN_BUILD_ENV, None)
        _publish(build, home)


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


@dataclasses.dataclass(frozen=True)
class Build:
    """A private build file, and how it was started: from the standby caught up by the
    published file's journal, or (`copy_reason` says why) from a copy of the published file."""

    path: Path
    copy_reason: str | None

    @property
    def caught_up(self) -> bool:
        return self.copy_reason is None


def start_build(home: Path) -> Build:
    """Under the writer lock: drop what crashed runs left, then make the next build from the
    standby when it can be caught up, else from a copy of the published file."""
    folder = build_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.iterdir():
        if leftover.name not in (STANDBY, FILES):
            _remove(leftover)
    build = folder / f"warehouse-{uuid.uuid4().hex}.duckdb"
    published = published_path(home)
    if not published.exists():
        _remove(folder / STANDBY)
        _begin_build(build)
        return Build(build, "nothing is published yet")
    reason = _standby_unusable(home)
    if reason is None:
        # Renamed first: a crash from here on leaves an orphan that the next writer deletes,
        # never a half caught-up file under the standby's name.
        os.replace(folder / STANDBY, build)
        reason = _catch_up(build, published)
        if reason is None:
            return Build(build, None)
        _discard(build)
    _remove(folder / STANDBY)
    shutil.copyfile(published, build)
    _begin_build(build)
    return Build(build, reason)


def _standby_unusable(home: Path) -> str | None:
    """Why the standby cannot be caught up from the published file's journal, or None."""
    folder, published = build_dir(home), published_path(home)
    standby = folder / STANDBY
    if not standby.exists():
        return "no standby (the first publish here, or the last one did not keep one)"
    files = _read_files(folder)
    if files.get("published") != _identity(published) or files.get("standby") != _identity(standby):
        # Someone wrote to the published file or the standby since they were published (an
        # analyst without -readonly), or a publish was interrupted: the journal may not tell.
        return "the published file or the standby is not the file eventpulse published"
    if _wal(published).exists() or _wal(standby).exists():
        return "a write-ahead log beside the published file (someone wrote to it directly)"
    if _held_by_this_process(standby):
        # Other processes are kept off by DuckDB's file lock (_catch_up); this one is not.
        return "this process still reads the previous warehouse"
    return None


def _catch_up(build: Path, published: Path) -> str | None:
    try:
        conn = connect(build)
    except duckdb.IOException as exc:
        # DuckDB's lock: a reader still has the previous published file (this inode) open.
        return f"a reader still has the previous warehouse open ({str(exc).splitlines()[0]})"
    try:
        reason = journal.catch_up(conn, published)
        if reason is None:
            # Without vacuuming: DuckDB would merge the row groups the deletes left short with
            # their neighbours, rewriting up to several full row groups (120k rows each) of
            # event_copies for a day's change. The build's own checkpoints still vacuum.
            conn.execute("set max_vacuum_tasks = 0")
            conn.execute("checkpoint")
        return reason
    finally:
        conn.close()


def _begin_build(build: Path) -> None:
    conn = connect(build)
    try:
        journal.begin_build(conn)
        conn.execute("checkpoint")
    finally:
        conn.close()


def _publish(build: Path, home: Path) -> None:
    """fsync the build, keep the published file as the next standby (a hard link: no copy),
    then rename the build over it."""
    folder, published = build_dir(home), published_path(home)
    with open(build, "rb") as handle:
        os.fsync(handle.fileno())
    files = _read_files(folder)
    standby = folder / STANDBY
    _remove(standby)
    kept = None
    if published.exists() and files.get("published") == _identity(published):
        os.link(published, standby)
        kept = files["published"]
    _write_files(folder, {"published": _identity(build), "standby": kept})
    # A write-ahead log beside the published file is left by someone who wrote to it directly
    # (an analyst without -readonly whose session ended uncleanly). It belongs to the file being
    # replaced: beside the new one, every reader would fail on it.
    _wal(published).unlink(missing_ok=True)
    os.replace(build, published)
    _fsync_directory(published.parent)
    _fsync_directory(folder)


def _identity(path: Path) -> list[int] | None:
    """What tells a file apart and changes when it is written: inode, size, modification time."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def _read_files(folder: Path) -> dict:
    try:
        return json.loads((folder / FILES).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_files(folder: Path, files: dict) -> None:
    scratch = folder / (FILES + ".tmp")
    with open(scratch, "w") as handle:
        json.dump(files, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, folder / FILES)


def _held_by_this_process(path: Path) -> bool:
    """Whether this process has the file open (DuckDB's lock does not stop the process that
    holds it). Without /proc, we cannot tell: taken as held, so the writer copies."""
    target = path.stat()
    descriptors = Path("/proc/self/fd")
    if not descriptors.is_dir():
        return True
    for fd in descriptors.iterdir():
        try:
            held = fd.stat()
        except OSError:
            continue
        if (held.st_ino, held.st_dev) == (target.st_ino, target.st_dev):
            return True
    return False


def _discard(build: Path) -> None:
    build.unlink(missing_ok=True)
    _wal(build).unlink(missing_ok=True)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
