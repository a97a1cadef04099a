"""`eventpulse query` is read-only and contained (issue 7 item 4)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.query import run_query


@pytest.fixture
def published(home: Path) -> Path:
    with warehouse.writer(home) as conn:
        conn.execute("create table events as select range as n from range(5)")
    (home / "inside.csv").write_text("a\n1\n")
    return home


def test_select_works(published):
    assert run_query(published, "select count(*) as n from events").rows == [(5,)]


def test_reading_files_inside_home_is_allowed(published):
    path = published / "inside.csv"
    assert run_query(published, f"select * from read_csv('{path}')").rows == [(1,)]


ESCAPES = [
    "select * from read_text('/etc/passwd')",
    "copy events to '{home}/out.csv'",
    "copy (select 1) to '/tmp/eventpulse-escape.csv'",
    "attach '{home}/other.duckdb' as other",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
    "set lock_configuration = false",
    "select * from glob('/*')",
    "select * from read_csv('{home}/../../../etc/passwd')",
    "insert into events values (6)",
    "create table stolen as select 1",
    "create temp table scratch as select 1",
    "drop table events",
    "select * from read_csv('http://127.0.0.1:9/x.csv')",
    "pragma enable_profiling",
    "select 1; copy events to '{home}/x.csv'",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_escape_attempts_are_refused_and_write_nothing(published, sql):
    before = sorted(p.name for p in published.rglob("*"))
    with pytest.raises(EventpulseError) as error:
        run_query(published, sql.format(home=published))
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in published.rglob("*")) == before
    assert not Path("/tmp/eventpulse-escape.csv").exists()
    assert run_query(published, "select count(*) from events").rows == [(5,)]


def test_runaway_query_is_stopped_by_the_timeout(published):
    with pytest.raises(EventpulseError, match="longer than 1 s"):
        run_query(published, "select count(*) from range(10000000000) a, range(10) b", timeout=1)


def test_missing_warehouse_is_one_clear_sentence(home):
    with pytest.raises(EventpulseError, match="No warehouse"):
        run_query(home, "select 1")


def test_cli_prints_one_line_error_without_traceback(published):
    env = {**os.environ, "EVENTPULSE_HOME": str(published)}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "query", "copy events to 'x.csv'"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "read-only" in done.stderr


def test_cli_formats(published):
    env = {**os.environ, "EVENTPULSE_HOME": str(published)}
    for fmt, expected in (("csv", "n\n0\n1\n"), ("json", '"n": 0')):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "query",
                "select n from events order by n limit 2",
                "--format",
                fmt,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert expected in done.stdout


def test_cli_table_prints_data_as_text_never_as_markup(published):
    env = {**os.environ, "EVENTPULSE_HOME": str(published), "COLUMNS": "200"}
    sql = "select '[/]' as \"[b]event\", '[link=https://example.com]click[/link]' as label"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "query", sql],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "[/]" in done.stdout and "[b]event" in done.stdout
    assert "[link=https://example.com]click[/link]" in done.stdout


def test_a_folder_error_is_one_sentence_without_a_traceback(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the home folder should be")
    env = {**os.environ, "EVENTPULSE_HOME": str(blocked / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "generate", "--days", "2", "--users", "10"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "Not a directory" in said and "then run the command again" in said
