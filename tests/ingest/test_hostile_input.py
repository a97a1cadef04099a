"""Hostile input (issue 19 item 7, acceptance): every kind of file and record an operator has
seen break or slow a pipeline. For each, per arrival day, every record read ends in `events`
or in `quarantine` with a contract reason (conservation, counted here independently of the
loader), the kinds with a known fate get it, and one normal `eventpulse run` over all of them
finishes with a calendar that did not stretch."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from assets.ingest.load import conservation_failures, load_partition
from pipelines import warehouse

DAY = dt.date(2026, 3, 10)
REASONS = {
    "malformed_record",
    "missing_user_id",
    "missing_event",
    "missing_timestamp",
    "invalid_timestamp",
    "future_timestamp",
    "invalid_revenue",
    "invalid_type",
    "oversized_record",
    "duplicate_event_id",
}


def line(user: str = "u1", ts: object = "2026-03-10T12:00:00Z", **extra: object) -> str:
    return json.dumps({"user_id": user, "event": "page_view", "timestamp": ts, **extra})


def lines(*records: str, end: str = "\n") -> bytes:
    return "".join(record + end for record in records).encode()


@dataclass
class Hostile:
    """Files to drop in one arrival folder; what a reader must find there."""

    files: Callable[[Path], None]
    records: int | None  # records in the files, counted by hand (None: junk, not countable)
    loaded: int | None = None  # rows in events, when the fate is known
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine rows by reason


def write(name: str, data: bytes) -> Callable[[Path], None]:
    def files(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return files


def each(*writers: Callable[[Path], None]) -> Callable[[Path], None]:
    def files(folder: Path) -> None:
        for writer in writers:
            writer(folder)

    return files


def symlink(name: str, target: Callable[[Path], Path]) -> Callable[[Path], None]:
    def files(folder: Path) -> None:
        (folder / name).symlink_to(target(folder))

    return files


def outside_secret(folder: Path) -> Path:
    secret = folder.parent.parent / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nkey=sk-not-for-quarantine\n")
    return secret


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


CSV_HEADER = "user_id,event,timestamp,revenue\n"
GLOB_NAMES = ["[ab].jsonl", "a.jsonl", "b.jsonl", "*.jsonl", "?.jsonl", "{a,b}.jsonl"]
ODD_NAMES = [
    "name with spaces.jsonl",
    "ünïcødé.jsonl",
    "-dash.jsonl",
    "%s%n.jsonl",
    "q'\"`$(x).jsonl",
]
GZIPPED = gzip.compress(lines(*(line(user=f"g{i}") for i in range(2000))))

HOSTILE: dict[str, Hostile] = {
    "utf8 BOM, JSON lines": Hostile(
        write("bom.jsonl", b"\xef\xbb\xbf" + lines(line("a"), line("b"))), 2, loaded=2
    ),
    "utf8 BOM, CSV": Hostile(
        write(
            "bom.csv", b"\xef\xbb\xbf" + (CSV_HEADER + "a,view,2026-03-10T01:00:00Z,1\n").encode()
        ),
        1,
        loaded=1,
    ),
    "NUL bytes": Hostile(
        write("nul.jsonl", lines(line("a", note="x\\u0000y"), '{"user_id": "b\x00", "event": 1}')),
        2,
    ),
    "CRLF line ends": Hostile(write("crlf.jsonl", lines(line("a"), line("b"), end="\r\n")), 2, 2),
    "lone CR line ends (old Mac)": Hostile(
        write("cr.jsonl", lines(line("abc"), line("bcd"), line("cde"), end="\r")), 3, loaded=3
    ),
    "deep nesting": Hostile(
        write(
            "deep.jsonl",
            lines(
                line("a", properties={"x": json.loads(deep(200))}),
                '{"user_id": "b", "event": "e", "timestamp": "2026-03-10", "p": '
                + deep(100_000)
                + "}",
            ),
        ),
        2,
    ),
    "glob characters in names": Hostile(
        each(*(write(name, lines(line(name))) for name in GLOB_NAMES)), len(GLOB_NAMES), 6
    ),
    "odd names": Hostile(
        each(*(write(name, lines(line(name))) for name in ODD_NAMES)), len(ODD_NAMES), 5
    ),
    "a very long name": Hostile(write("n" * 240 + ".jsonl", lines(line("a"))), 1, loaded=1),
    "revenue 1e30": Hostile(
        write("rich.jsonl", lines(line("a", revenue=1e30))), 1, 0, {"invalid_revenue": 1}
    ),
    "two revenues of 6e28": Hostile(
        write("rich.jsonl", lines(line("a", revenue=6e28), line("b", revenue=6e28))),
        2,
        0,
        {"invalid_revenue": 2},
    ),
    "revenue NaN, Infinity, a word": Hostile(
        write(
            "nan.jsonl",
            lines(
                line("a", revenue="NaN"), line("b", revenue="Infinity"), line("c", revenue="lots")
            ),
        ),
        3,
        0,
        {"invalid_revenue": 3},
    ),
    "year 0001, BC, 0, -1, 'epoch'": Hostile(
        write(
            "ancient.jsonl",
            lines(
                line("a", ts="0001-01-01T00:00:00Z"),
                line("b", ts="0044-03-15 BC"),
                line("c", ts=0),
                line("d", ts=-1),
                line("e", ts="epoch"),
                line("f", ts="1970-01-01T00:00:00Z"),
            ),
        ),
        6,
        0,
        {"invalid_timestamp": 6},
    ),
    "year 9999": Hostile(
        write("late.jsonl", lines(line("a", ts="9999-12-31T23:59:59Z"))),
        1,
        0,
        {"future_timestamp": 1},
    ),
    "epoch seconds, ms and µs": Hostile(
        write(
            "epoch.jsonl",
            lines(
                line("s", ts=1773144000),
                line("ms", ts=1773144000000),
                line("us", ts=1773144000000000),
            ),
        ),
        3,
        loaded=3,
    ),
    "a CSV row with an extra cell": Hostile(
        write(
            "extra.csv",
            (
                CSV_HEADER + "a,view,2026-03-10T01:00:00Z,1\nb,buy,2026-03-10T01:00:00Z,1,234.50\n"
            ).encode(),
        ),
        2,
        1,
        {"malformed_record": 1},
    ),
    "a CSV whose header repeats a name": Hostile(
        write("repeated.csv", ("user_id,event,event\n" + "a,b,c\n" * 5).encode()),
        5,
        0,
        {"malformed_record": 5},
    ),
    "a symlink out of the folder": Hostile(
        symlink("passwd.jsonl", outside_secret), 1, 0, {"malformed_record": 1}
    ),
    "a symlink to a sibling": Hostile(
        each(
            write("real.jsonl", lines(line("a"))), symlink("same.jsonl", lambda f: f / "real.jsonl")
        ),
        2,
        1,
        {"duplicate_event_id": 1},
    ),
    "empty files": Hostile(
        each(
            write("empty.jsonl", b""),
            write("empty.csv", b""),
            write("empty.jsonl.gz", gzip.compress(b"")),
        ),
        0,
        0,
    ),
    "blank lines only": Hostile(write("blank.jsonl", b"\n \n\t\r\n\n"), 0, 0),
    "a hidden partial copy": Hostile(write(".partial.jsonl", lines(line("a"))), 0, 0),
    "a nested folder": Hostile(
        lambda folder: (
            (folder / "sub").mkdir() or (folder / "sub" / "x.jsonl").write_bytes(lines(line("a")))
        ),
        1,
        loaded=1,
    ),
    "a huge line (2 MiB)": Hostile(
        write("huge.jsonl", lines(line("a", pad="x" * (2 << 20)), line("b"))),
        2,
        1,
        {"oversized_record": 1},
    ),
    "not JSON, arrays, scalars": Hostile(
        write("junk.jsonl", lines("{not json", "[1, 2]", "42", '"text"', "null")),
        5,
        0,
        {"malformed_record": 5},
    ),
    # Which copy of a repeated key counts is the JSON reader's choice: only conservation here.
    "a repeated key": Hostile(
        write(
            "twice.jsonl",
            lines('{"user_id": "a", "user_id": "b", "event": "e", "timestamp": 1773144000}'),
        ),
        1,
    ),
    "UTF-16": Hostile(
        write("utf16.jsonl", "\n".join([line("a"), line("b")]).encode("utf-16")), None
    ),
    "Latin-1": Hostile(
        write("latin1.jsonl", '{"user_id": "Zürich"}\n{"user_id": "Genève"}\n'.encode("latin-1")),
        2,
        0,
        {"malformed_record": 2},
    ),
    "binary junk": Hostile(write("junk.jsonl", bytes(range(256)) * 64), None, 0),
    "a truncated gzip": Hostile(write("cut.jsonl.gz", GZIPPED[: len(GZIPPED) // 2]), None),
    "a .gz that is no gzip": Hostile(
        write("fake.jsonl.gz", lines(line("a"))), 1, 0, {"malformed_record": 1}
    ),
    "a corrupt Parquet file": Hostile(
        write("bad.parquet", b"PAR1 garbage PAR1"), 1, 0, {"malformed_record": 1}
    ),
    "an unsupported extension": Hostile(
        write("notes.xlsx", b"PK\x03\x04 a spreadsheet"), 1, 0, {"malformed_record": 1}
    ),
}


def arrive(landing: Path, day: dt.date, hostile: Hostile) -> None:
    folder = landing / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    hostile.files(folder)


def day_counts(conn: duckdb.DuckDBPyConnection, day: dt.date) -> tuple[int, int, int]:
    return conn.execute(
        "select coalesce((select records from ingest_log where arrival_date = $d "
        "order by finished_at desc limit 1), 0),"
        " (select count(*) from events where arrival_date = $d),"
        " (select count(*) from quarantine where arrival_date = $d)",
        {"d": day},
    ).fetchone()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_every_hostile_record_ends_in_events_or_quarantine_with_a_reason(kind, tmp_path):
    hostile = HOSTILE[kind]
    landing = tmp_path / "landing" / "events"
    arrive(landing, DAY, hostile)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        load_partition(conn, landing, DAY)
        records, loaded, quarantined = day_counts(conn, DAY)
        assert records == loaded + quarantined
        assert conservation_failures(conn) == []
        if hostile.records is not None:
            assert records == hostile.records
        if hostile.loaded is not None:
            assert loaded == hostile.loaded
        reasons = dict(
            conn.execute("select reason, count(*) from quarantine group by 1").fetchall()
        )
        assert set(reasons) <= REASONS
        for reason, count in hostile.reasons.items():
            assert reasons.get(reason) == count, reasons
        assert conn.execute(
            "select count(*) from quarantine where detail is null or detail = ''"
        ).fetchone() == (0,)
        leaked = conn.execute("select count(*) from quarantine where raw like '%sk-not-for%'")
        assert leaked.fetchone() == (0,)
        # A second load of the same day replaces it: counts never double.
        load_partition(conn, landing, DAY)
        assert day_counts(conn, DAY) == (records, loaded, quarantined)
    finally:
        conn.close()


@pytest.mark.slow
def test_the_next_normal_run_over_every_hostile_kind_finishes(tmp_path):
    """Each kind on its own arrival day, beside ordinary traffic; one plain `eventpulse run`
    builds every table. The bound only catches a stall: it is generous, never a speed claim."""
    home = tmp_path / "home"
    landing = home / "landing" / "events"
    days = [DAY + dt.timedelta(days=i) for i in range(len(HOSTILE))]
    for day, hostile in zip(days, HOSTILE.values(), strict=True):
        arrive(landing, day, hostile)
        ordinary = [line(f"v{n}", ts=f"{day}T0{n}:00:00Z", revenue=n) for n in range(3)]
        (landing / f"date={day}" / "ordinary.jsonl").write_bytes(lines(*ordinary))
    (home / "eventpulse.yaml").write_text(f"start_date: {DAY}\n")
    env = {
        **os.environ,
        "EVENTPULSE_HOME": str(home),
        "EVENTPULSE_CONFIG": str(home / "eventpulse.yaml"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert conservation_failures(conn) == []
        assert conn.execute("select count(distinct arrival_date) from ingest_log").fetchone() == (
            len(days),
        )
        # No record stretched the calendar (to 1970, year 1 or 9999): days stay near the data.
        first, last, rows = conn.execute(
            "select min(metric_date), max(metric_date), count(*) from daily_metrics "
            "where dimension = 'all'"
        ).fetchone()
        assert first >= DAY - dt.timedelta(days=1) and last <= days[-1] + dt.timedelta(days=1)
        assert rows <= len(days) + 2
        assert conn.execute("select count(*) from users").fetchone()[0] > 0
        assert conn.execute("select count(*) from anomalies").fetchone()[0] >= 0
    finally:
        conn.close()
