"""Publish without copying (issue 14, item 4): the standby caught up by the published file's
journal equals the published warehouse row by row in every table, after random sequences of
runs (late data, re-sends, re-loads, out-of-order days, forget, a timezone change that rebuilds
everything), in both publish scopes; whatever the standby cannot be trusted for falls back to
the copy."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from random_arrivals import DAYS, random_record, write_day

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import score_changed_days
from assets.ingest.load import forget_partition, load_partition
from assets.marts.cohorts import update_cohorts
from assets.marts.funnels import update_funnels
from assets.marts.metrics import update_daily_metrics
from assets.marts.retention import update_retention
from assets.marts.sessions_users import update_sessions, update_users
from pipelines import journal, warehouse
from pipelines.settings import Settings

UTC = Settings(home=Path("."), dimensions=("platform", "country"), dimension_limit=2)
PACIFIC = dataclasses.replace(UTC, timezone="America/Los_Angeles")


@pytest.fixture
def builds(monkeypatch) -> list[warehouse.Build]:
    """Every build the writers start, in order (how each was started)."""
    started: list[warehouse.Build] = []
    start = warehouse.start_build

    def recording(home: Path) -> warehouse.Build:
        started.append(start(home))
        return started[-1]

    monkeypatch.setattr(warehouse, "start_build", recording)
    return started


def table_rows(conn: duckdb.DuckDBPyConnection, database: str) -> dict[str, list[tuple]]:
    tables = conn.execute(
        "select table_name from duckdb_tables() where database_name = $db and schema_name = 'main'"
        " and table_name not in ($journal, $generation) order by 1",
        {"db": database, "journal": journal.JOURNAL, "generation": journal.GENERATION},
    ).fetchall()
    return {
        t: conn.execute(f'select * from "{database}".main."{t}" order by all').fetchall()
        for (t,) in tables
    }


def assert_equals_published(conn: duckdb.DuckDBPyConnection, home: Path, step: str) -> None:
    """The build as it starts (the caught-up standby) holds exactly the published tables."""
    own = conn.execute("select current_database()").fetchall()[0][0]
    conn.execute(f"attach '{warehouse.published_path(home)}' as published_now (read_only)")
    try:
        mine, theirs = table_rows(conn, own), table_rows(conn, "published_now")
    finally:
        conn.execute("detach published_now")
    assert mine.keys() == theirs.keys(), step
    for table in theirs:
        assert mine[table] == theirs[table], f"{table} differs from the published one {step}"


def random_step(
    rng: random.Random, landing: Path, loaded: set[dt.date], shared: list[str], settings: Settings
) -> tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]:
    """One arrival-day action of a run (the ingest step), as the incremental mart tests do."""
    action = rng.choice(["load", "load", "load", "reload", "forget", "nothing"])
    day = rng.choice(DAYS)
    if action in ("reload", "forget") and loaded:
        day = rng.choice(sorted(loaded))
    if action == "forget" and loaded:
        shutil.rmtree(landing / f"date={day.isoformat()}", ignore_errors=True)
        loaded.discard(day)
        return f"forget {day}", lambda conn: forget_partition(conn, day, settings.timezone)
    if action != "nothing":
        records = [random_record(rng, day, shared) for _ in range(rng.randint(1, 25))]
        for record in records:
            if rng.random() < 0.7:
                record["country"] = rng.choice(["NL", "DE", "US"])
        write_day(landing, day, records)
        loaded.add(day)
    return f"{action} {day}", lambda conn: load_partition(
        conn, landing, day, None, settings.timezone
    )


def _update_retention(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    update_retention(conn, settings.retention, settings.timezone)


def _score_anomalies(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    write_anomalies(conn, score_changed_days(conn, settings.anomalies), settings.anomalies)


# Every incremental mart and the anomaly scoring, in the order of the asset graph.
MART_UPDATES = [
    ("sessions", update_sessions),
    ("users", update_users),
    ("daily_metrics", update_daily_metrics),
    ("cohorts", update_cohorts),
    ("retention", _update_retention),
    ("funnels", update_funnels),
    ("anomalies", _score_anomalies),
]


def update_marts(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    for _, update in MART_UPDATES:
        update(conn, settings)


@pytest.mark.parametrize("seed", range(4))
def test_random_step_publishes_keep_the_standby_equal_to_the_published_warehouse(
    home: Path, builds: list[warehouse.Build], seed: int
) -> None:
    """The Dagster UI's scope: every asset step publishes, so every step catches up the one
    before it."""
    rng = random.Random(seed)
    landing, loaded, shared = home / "landing" / "events", set(), []
    settings = UTC
    for run in range(8):
        if run == 5:
            settings = PACIFIC  # every event dated again, every mart rebuilt in full
        step, ingest = random_step(rng, landing, loaded, shared, settings)
        stages = [("ingest", ingest)] + [
            (name, lambda conn, update=update, settings=settings: update(conn, settings))
            for name, update in MART_UPDATES
        ]
        for name, stage in stages:
            with warehouse.writer(home) as conn:
                if warehouse.published_path(home).exists():
                    assert_equals_published(conn, home, f"before {name} of run {run} ({step})")
                stage(conn)
    # The first run's steps each add tables (a schema the standby lacks), and so does the
    # next run's first step catching up the last of them: copies. Every later step, the
    # timezone change included, catches up.
    copied = [(i, b.copy_reason) for i, b in enumerate(builds) if not b.caught_up]
    assert [i for i, _ in copied] == list(range(1 + len(MART_UPDATES) + 1)), copied


@pytest.mark.parametrize("seed", range(4))
def test_random_runs_keep_the_standby_equal_to_the_published_warehouse(
    home: Path, builds: list[warehouse.Build], seed: int
) -> None:
    """`eventpulse run`'s scope: one build, one publish per run."""
    rng = random.Random(100 + seed)
    landing, loaded, shared = home / "landing" / "events", set(), []
    settings = UTC
    for run in range(10):
        if run == 6:
            settings = PACIFIC
        days = [
            random_step(rng, landing, loaded, shared, settings) for _ in range(rng.randint(1, 3))
        ]
        with warehouse.run_build(home):
            with warehouse.writer(home) as conn:
                if warehouse.published_path(home).exists():
                    assert_equals_published(conn, home, f"at the start of run {run}")
                for _, ingest in days:
                    ingest(conn)
            with warehouse.writer(home) as conn:
                update_marts(conn, settings)
    assert [b.caught_up for b in builds] == [False, False] + [True] * 8


def test_a_load_journals_its_arrival_days_not_the_whole_table(home: Path) -> None:
    landing = home / "landing" / "events"
    rng = random.Random(3)
    for day in DAYS[:3]:
        write_day(landing, day, [random_record(rng, day, []) for _ in range(20)])
        with warehouse.writer(home) as conn:
            load_partition(conn, landing, day)
            update_marts(conn, UTC)
    with warehouse.reader(home) as conn:
        entries = conn.execute(
            "select table_name, key_column, list(distinct key_value order by key_value) "
            "from publish_journal group by all"
        ).fetchall()
    keys = {table: (column, values) for table, column, values in entries}
    # The third day's load: its own day, and earlier days only for the anonymous ids it shares.
    column, days = keys["event_copies"]
    assert column == "arrival_date" and str(DAYS[2]) in days
    assert set(days) <= {str(day) for day in DAYS[:3]}
    assert keys["quarantine"][0] == "arrival_date"
    for table in (
        "sessions",
        "users",
        "cohort_user_days",
        "cohort_members",
        "cohort_user_periods",
        "retention_users",
        "funnel_user_attempts",
    ):
        assert keys[table][0] == "user_id", table
    assert keys["dimension_user_days"][0] == "metric_date"
    # The scoring run's days (the metrics' calendar days from its first scored day on).
    for table in ("anomalies", "anomaly_inputs", "anomaly_days"):
        column, days = keys[table]
        assert column == "metric_date" and days, table
        assert all(DAYS[0] <= dt.date.fromisoformat(day) <= DAYS[2] for day in days), table
    assert keys["daily_metrics"] == (None, [None])  # small: copied whole


def test_a_reader_holding_the_previous_file_forces_the_copy_and_is_never_disturbed(
    home: Path, builds: list[warehouse.Build]
) -> None:
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select range as n from range(1000)")
    published = warehouse.published_path(home)
    # A reader in another process opens the published file, then keeps it across a publish:
    # that file is the standby the next writer would write.
    script = textwrap.dedent(
        f"""
        import sys, duckdb
        conn = duckdb.connect({str(published)!r}, read_only=True)
        print(conn.execute("select count(*), sum(n) from t").fetchall(), flush=True)
        sys.stdin.readline()
        print(conn.execute("select count(*), sum(n) from t").fetchall(), flush=True)
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        first = reader.stdout.readline()
        with warehouse.writer(home) as conn:
            conn.execute("insert into t values (5000)")
        with warehouse.writer(home) as conn:  # the standby is the file the reader holds
            conn.execute("insert into t values (7000)")
        assert not builds[-1].caught_up
        assert "a reader still has the previous warehouse open" in builds[-1].copy_reason
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline() == first  # its snapshot, untouched
    finally:
        reader.kill()
        reader.wait()
    with warehouse.reader(home) as conn:
        assert conn.execute("select count(*) from t").fetchall() == [(1002,)]
    with warehouse.writer(home) as conn:  # the reader is gone: the standby serves again
        conn.execute("insert into t values (9000)")
    assert builds[-1].caught_up
    with warehouse.reader(home) as conn:
        assert conn.execute("select count(*), max(n) from t").fetchall() == [(1003, 9000)]


def test_a_direct_write_to_the_published_file_is_never_caught_up_over(
    home: Path, builds: list[warehouse.Build]
) -> None:
    for n in range(3):
        with warehouse.writer(home) as conn:
            conn.execute("create table if not exists t (n integer)")
            conn.execute("insert into t values ($n)", {"n": n})
    # An analyst writes without -readonly: the file no longer is the one published.
    analyst = duckdb.connect(str(warehouse.published_path(home)))
    analyst.execute("insert into t values (100)")
    analyst.execute("checkpoint")
    analyst.close()
    with warehouse.writer(home) as conn:  # its journal does not tell the analyst's row
        assert_equals_published(conn, home, "after a direct write")
        conn.execute("insert into t values (3)")
    with warehouse.writer(home) as conn:  # the changed file was not kept as the standby
        assert_equals_published(conn, home, "one publish later")
        conn.execute("insert into t values (4)")
    assert [b.caught_up for b in builds[-2:]] == [False, False]
    with warehouse.writer(home) as conn:
        assert_equals_published(conn, home, "two publishes later")
    assert builds[-1].caught_up
    with warehouse.reader(home) as conn:  # kept, as the copy keeps it
        assert conn.execute("select count(*) from t where n = 100").fetchall() == [(1,)]


def test_a_schema_change_falls_back_to_the_copy(home: Path, builds: list[warehouse.Build]) -> None:
    for _ in range(2):
        with warehouse.writer(home) as conn:
            conn.execute("create table if not exists t (n integer)")
            conn.execute("insert into t values (1)")
    with warehouse.writer(home) as conn:
        conn.execute("alter table t add column m integer")
    with warehouse.writer(home) as conn:
        conn.execute("insert into t values (2, 2)")
    assert not builds[-1].caught_up and "schema" in builds[-1].copy_reason
    with warehouse.writer(home) as conn:
        assert_equals_published(conn, home, "after the migration")
    assert builds[-1].caught_up
