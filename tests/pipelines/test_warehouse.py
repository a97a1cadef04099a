"""The warehouse publishes atomically: readers are never blocked, crashes lose nothing."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipelines import warehouse


def count(home: Path) -> int:
    with warehouse.reader(home) as conn:
        return conn.execute("select count(*) from t").fetchall()[0][0]


def test_a_reader_keeps_working_while_a_writer_writes(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select range as n from range(10)")
    analyst = warehouse.connect(warehouse.published_path(home), read_only=True)
    with warehouse.writer(home) as conn:
        conn.execute("insert into t select range from range(10)")
        # Mid-write, a fresh read-only open works and sees the last published state.
        assert count(home) == 10
    assert analyst.execute("select count(*) from t").fetchall() == [(10,)]  # its snapshot
    analyst.close()
    assert count(home) == 20


def test_a_failed_write_publishes_nothing_and_leaves_no_build(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select 1 as n")
    with pytest.raises(RuntimeError), warehouse.writer(home) as conn:
        conn.execute("insert into t values (2)")
        raise RuntimeError("step failed")
    assert count(home) == 1
    assert list(warehouse.build_dir(home).glob("warehouse-*")) == []  # no orphaned build


def test_run_build_publishes_once_at_the_end(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select 1 as n")
    with warehouse.run_build(home):
        for _ in range(3):
            with warehouse.writer(home) as conn:
                conn.execute("insert into t values (2)")
        with warehouse.reader(home) as conn:  # steps of the run see the run's own writes
            assert conn.execute("select count(*) from t").fetchall() == [(4,)]
        assert os.environ.get(warehouse.RUN_BUILD_ENV)
    assert warehouse.RUN_BUILD_ENV not in os.environ
    assert count(home) == 4


def test_a_failed_run_build_publishes_nothing(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select 1 as n")
    with pytest.raises(ValueError), warehouse.run_build(home):
        with warehouse.writer(home) as conn:
            conn.execute("insert into t values (2)")
        raise ValueError("a later step failed")
    assert count(home) == 1


def test_writers_take_turns(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t (n integer)")

    def add(n: int) -> None:
        with warehouse.writer(home) as conn:
            current = conn.execute("select count(*) from t").fetchall()[0][0]
            time.sleep(0.05)
            conn.execute("insert into t values ($n)", {"n": current + n})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(home) == 6  # no lost update: each writer saw the previous one's publish


def test_kill_9_mid_write_leaves_the_last_publish_and_the_next_writer_cleans_up(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select range as n from range(100)")
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from pipelines import warehouse
        with warehouse.writer(Path({str(home)!r})) as conn:
            conn.execute("insert into t select range from range(1000000)")
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    assert list(warehouse.build_dir(home).glob("*.duckdb"))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert count(home) == 100
    with warehouse.writer(home) as conn:
        conn.execute("insert into t values (1)")
    assert count(home) == 101
    assert list(warehouse.build_dir(home).glob("warehouse-*")) == []  # no orphaned build


def test_lock_wait_gives_a_clear_message(home):
    with warehouse.writer_lock(home):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pathlib import Path; from pipelines import warehouse\n"
                f"with warehouse.writer_lock(Path({str(home)!r}), wait_seconds=0.3): pass",
            ],
            capture_output=True,
            text=True,
        )
    assert done.returncode != 0
    assert "write lock" in done.stderr


def test_a_wal_left_by_a_direct_write_is_cleared_by_the_next_publish(home):
    with warehouse.writer(home) as conn:
        conn.execute("create table t as select 1 as n")
    published = warehouse.published_path(home)
    # An analyst writes without -readonly and their process ends uncleanly: the WAL stays.
    script = textwrap.dedent(
        f"""
        import os, duckdb
        conn = duckdb.connect({str(published)!r})
        conn.execute("insert into t values (2)")
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    wal = published.with_name(published.name + ".wal")
    assert wal.exists()
    with warehouse.writer(home) as conn:
        conn.execute("insert into t values (3)")
    assert not wal.exists()
    with warehouse.reader(home) as conn:
        assert conn.execute("select count(*) from t").fetchall()[0][0] >= 2
