"""Shared test setup: an isolated home folder, offline models, and an events-table factory."""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Test homes in memory when the machine has room: hundreds of `eventpulse run`s each make about
# 1,500 fdatasyncs (mostly Dagster's SQLite run history), milliseconds each on a virtual disk
# and nothing on tmpfs. No test depends on a sync reaching the disk: kill -9 leaves the page
# cache intact, and the full-disk test limits file sizes (RLIMIT_FSIZE), not the filesystem.
MEMORY_TMP = Path("/dev/shm")
MEMORY_TMP_MIN_FREE = 8 * 2**30
if "EVENTPULSE_TEST_TMP" in os.environ:
    tempfile.tempdir = os.environ["EVENTPULSE_TEST_TMP"]
elif (
    MEMORY_TMP.is_dir()
    and os.access(MEMORY_TMP, os.W_OK)
    and shutil.disk_usage(MEMORY_TMP).free >= MEMORY_TMP_MIN_FREE
):
    tempfile.tempdir = str(MEMORY_TMP)
os.environ["TMPDIR"] = tempfile.gettempdir()  # and the commands the tests start

# Before any project import: the Dagster asset modules build their partitions from the
# project settings when they are first imported (the core modules read nothing at import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="eventpulse-test-home-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
os.environ["EVENTPULSE_HOME"] = str(_SESSION_HOME)
(_SESSION_HOME / "eventpulse.yaml").write_text("start_date: 2025-01-01\n")
os.environ["EVENTPULSE_CONFIG"] = str(_SESSION_HOME / "eventpulse.yaml")

import duckdb  # noqa: E402
import pytest  # noqa: E402

from pipelines import warehouse  # noqa: E402
from pipelines.sql import run_sql_file  # noqa: E402

EVENT_COLUMNS = (
    "event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue, "
    "properties, arrival_date, source_file, line_no"
)


def insert_events(conn: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Insert clean events (as ingest would leave them) from dicts with at least user_id,
    event and ts (a datetime, UTC). Missing fields get neutral defaults."""
    run_sql_file(conn, "staging/tables.sql")
    records = []
    for n, row in enumerate(rows):
        ts: dt.datetime = row["ts"]
        key = f"{row['user_id']}|{row['event']}|{ts.isoformat()}|{n}"
        records.append(
            (
                row.get("event_id") or hashlib.md5(key.encode()).hexdigest(),
                row["user_id"],
                row["event"],
                ts,
                ts.date(),
                row.get("platform", "web"),
                row.get("channel", "organic"),
                row.get("campaign"),
                row.get("country"),
                row.get("revenue"),
                json.dumps(row.get("properties", {})),
                row.get("arrival_date", ts.date()),
                row.get("source_file", "test.jsonl"),
                row.get("line_no", n + 1),
            )
        )
    if not records:
        return
    conn.execute(
        f"create or replace temp table staged_events as select {EVENT_COLUMNS} "
        "from event_copies limit 0"
    )
    conn.executemany(
        "insert into staged_events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records
    )
    run_sql_file(conn, "staging/store_clean_events.sql", {"staged": "staged_events"})


# `make test` runs on two pytest-xdist workers (`-n 2 --dist loadscope`). A unit of work is a
# test module: its tests stay on one worker, so its module fixtures are built once. The modules
# named here are the exception: each of their tests is minutes long, a unit by itself, so that
# the two kill -9 tests run side by side. (xdist's own `loadgroup` cannot express this under
# pytest 9: the group suffix it writes into node ids is ignored.)
ONE_UNIT_PER_TEST = frozenset({"tests/pipelines/test_reliability.py"})


def work_unit(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return nodeid if module in ONE_UNIT_PER_TEST else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModuleScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units first (the tests of ONE_UNIT_PER_TEST, then modules with a slow test),
    so that no long test starts last while the other worker sits idle. Units are handed out in
    this order (`--no-loadscope-reorder`); a stable sort keeps each module's tests in order."""
    first: dict[str, tuple[bool, bool]] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        rank = (module not in ONE_UNIT_PER_TEST, item.get_closest_marker("slow") is None)
        first[module] = min(first.get(module, rank), rank)
    items.sort(key=lambda item: first[item.nodeid.split("::")[0]])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home folder for one test."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def conn(tmp_path: Path):
    """A DuckDB connection on a fresh file with the project's connection settings."""
    connection = warehouse.connect(tmp_path / "test.duckdb")
    try:
        yield connection
    finally:
        connection.close()
