"""`eventpulse query` streams its result (issue 19 item 3): a huge result is never held whole
in Python; the table shows a bounded number of rows and says how many were left out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import warehouse
from pipelines.query import BATCH_ROWS, open_query

# ~3M rows of 200 characters: ~1 GB as Python tuples if it were held whole.
HUGE = "select range as n, repeat('x', 200) as pad from range(3000000)"
PEAK_MEMORY_BOUND_MB = 400


@pytest.fixture
def published(home: Path) -> Path:
    with warehouse.writer(home) as conn:
        conn.execute("create table events as select range as n from range(25)")
    return home


def test_rows_arrive_in_bounded_batches(published):
    with open_query(published, "select range as n from range(25000)") as result:
        sizes = [len(batch) for batch in result.batches]
    assert result.columns == ["n"]
    assert sum(sizes) == 25000 and max(sizes) <= BATCH_ROWS


def query_in_child(home: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run `eventpulse query` in a child; returns it and its peak resident memory in MB."""
    # VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork+exec and would report the
    # pytest parent's size (the embedding model loaded by earlier tests).
    script = (
        "import re, sys, runpy\n"
        "sys.argv = ['eventpulse', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('pipelines.cli', run_name='__main__')\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    peak = int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024\n"
        "    print(f'PEAK_MB={peak:.0f}', file=sys.stderr)\n"
    )
    env = {**os.environ, "EVENTPULSE_HOME": str(home), "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-c", script, "query", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    peak = float(done.stderr.rsplit("PEAK_MB=", 1)[1].split()[0])
    return done, peak


def test_a_huge_table_result_shows_the_first_rows_and_says_how_many_were_left_out(published):
    done, peak = query_in_child(published, HUGE, "--max-rows", "5", "--timeout", "300")
    assert done.returncode == 0, done.stderr
    assert "3000000 rows; the first 5 are shown, 2999995 left out" in " ".join(done.stdout.split())
    # Rows of 200 characters are wider than the child's 80 columns: one `column  value` block a
    # row (the expanded display), so the shown n values are the `n` lines.
    shown = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("n ")}
    assert {"0", "1", "2", "3", "4"} <= shown and "5" not in shown
    assert peak < PEAK_MEMORY_BOUND_MB, f"peak {peak:.0f} MB"


def test_a_huge_csv_result_streams_every_row_in_bounded_memory(published):
    done, peak = query_in_child(published, HUGE, "--format", "csv", "--timeout", "300")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("\n") == 3000001
    assert peak < PEAK_MEMORY_BOUND_MB, f"peak {peak:.0f} MB"


def test_json_is_one_array_of_row_objects(published):
    done, _ = query_in_child(
        published, "select n from events where n < 3 order by n", "--format", "json"
    )
    assert json.loads(done.stdout) == [{"n": 0}, {"n": 1}, {"n": 2}]
    empty, _ = query_in_child(published, "select n from events where n < 0", "--format", "json")
    assert json.loads(empty.stdout) == []


def test_running_out_of_memory_is_one_sentence(published):
    # A MemoryError raised while the rows are fetched reaches the user as one sentence.
    script = (
        "import resource, sys, runpy\n"
        "import pipelines.query as q\n"
        "def boom(*a, **k):\n"
        "    raise MemoryError\n"
        "q._batches = boom\n"
        "sys.argv = ['eventpulse', 'query', 'select 1']\n"
        "runpy.run_module('pipelines.cli', run_name='__main__')\n"
    )
    env = {**os.environ, "EVENTPULSE_HOME": str(published)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "out of memory" in " ".join(done.stderr.split())
