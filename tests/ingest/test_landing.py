"""Landing folders as teams really leave them (CONTRACT §2): cleaned-up days keep their data,
folders that are no arrival day are named and skipped, and removing a day is explicit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assets.ingest.load import conservation_failures, forget_partition, load_partition
from pipelines.cli import _run_range
from pipelines.errors import EventpulseError
from pipelines.landing import landing_dates, stray_folders
from pipelines.settings import Settings

DAY = dt.date(2026, 11, 1)
TODAY = dt.date(2026, 11, 3)


def land(landing: Path, name: str, records: list[dict]) -> Path:
    folder = landing / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def record(n: int) -> dict:
    return {
        "event_id": f"e{n}",
        "user_id": "u1",
        "event": "page_view",
        "timestamp": "2026-11-01T10:00:00Z",
    }


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "events"


@pytest.mark.parametrize("cleanup", ["folder deleted", "folder emptied"])
def test_a_cleaned_up_landing_day_keeps_what_earlier_loads_put_in_the_warehouse(
    conn, landing: Path, cleanup: str
) -> None:
    path = land(landing, f"date={DAY}", [record(1), record(2), {"broken": True}])
    load_partition(conn, landing, DAY)
    path.unlink()
    if cleanup == "folder deleted":
        path.parent.rmdir()
    result = load_partition(conn, landing, DAY)
    assert result.nothing_arrived
    assert "kept the 2 events and 1 quarantined records" in result.summary()
    assert conn.execute("select count(*) from events").fetchall() == [(2,)]
    assert conn.execute("select count(*) from quarantine").fetchall() == [(1,)]
    assert conservation_failures(conn) == []


def test_forgetting_a_day_removes_its_rows_and_keeps_conservation(conn, landing: Path) -> None:
    land(landing, f"date={DAY}", [record(1), {"broken": True}])
    load_partition(conn, landing, DAY)
    forget_partition(conn, DAY)
    assert conn.execute("select count(*) from events").fetchall() == [(0,)]
    assert conn.execute("select count(*) from quarantine").fetchall() == [(0,)]
    assert conservation_failures(conn) == []


def test_folders_that_are_no_arrival_day_are_named_and_skipped(landing: Path) -> None:
    for name in (
        "date=2026-11-02",
        "date=2026-11-5",
        "date=2026-02-30",
        "exports",
        "date=2062-11-02",
    ):
        land(landing, name, [record(1)])
    assert landing_dates(landing, TODAY) == [dt.date(2026, 11, 2)]
    reasons = {s.path.name: s.reason for s in stray_folders(landing, TODAY)}
    assert set(reasons) == {"date=2026-11-5", "date=2026-02-30", "exports", "date=2062-11-02"}
    assert "not named date=YYYY-MM-DD with a real date" in reasons["date=2026-11-5"]
    assert "not named date=YYYY-MM-DD with a real date" in reasons["date=2026-02-30"]
    assert "dated after tomorrow" in reasons["date=2062-11-02"]


def test_tomorrow_is_still_an_arrival_day(landing: Path) -> None:
    land(landing, f"date={TODAY + dt.timedelta(days=1)}", [record(1)])
    assert landing_dates(landing, TODAY) == [TODAY + dt.timedelta(days=1)]
    assert stray_folders(landing, TODAY) == []


def test_a_run_skips_folders_before_start_date_and_a_date_before_it_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=tmp_path, start_date=dt.date(2026, 11, 1))
    for day in ("2026-10-30", "2026-11-01", "2026-11-02"):
        land(settings.landing_dir, f"date={day}", [record(1)])
    assert _run_range(settings, None, None, None) == (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
    assert "date=2026-10-30 is before start_date 2026-11-01" in capsys.readouterr().err
    with pytest.raises(EventpulseError, match="--date 2026-10-30 is before start_date"):
        _run_range(settings, "2026-10-30", None, None)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("revenue", 1e30, "invalid_revenue"),
        ("revenue", 6e28, "invalid_revenue"),
        ("timestamp", 0, "invalid_timestamp"),
        ("timestamp", -1, "invalid_timestamp"),
        ("timestamp", "epoch", "invalid_timestamp"),
        ("timestamp", "0001-01-01T00:00:00Z", "invalid_timestamp"),
        ("timestamp", "-0044-03-15T12:00:00Z", "invalid_timestamp"),
    ],
)
def test_values_outside_the_valid_ranges_are_quarantined(
    conn, landing: Path, field: str, value: object, reason: str
) -> None:
    """One record must never stop or stall the pipeline: a revenue that overflows the marts'
    exact sums, or a time that would stretch every calendar back to year 1 or 1970."""
    row = {**record(1), field: value} if field == "timestamp" else {**record(1), "revenue": value}
    land(landing, f"date={DAY}", [row, record(2)])
    load_partition(conn, landing, DAY)
    assert conn.execute("select reason from quarantine").fetchall() == [(reason,)]
    assert conn.execute("select count(*) from events").fetchall() == [(1,)]


def test_epoch_microseconds_are_read_as_microseconds(conn, landing: Path) -> None:
    land(landing, f"date={DAY}", [{**record(1), "timestamp": 1_793_527_200_000_000}])
    load_partition(conn, landing, DAY)
    assert conn.execute("select ts from events").fetchall() == [(dt.datetime(2026, 11, 1, 10),)]


def test_a_file_name_with_glob_characters_is_read_by_its_literal_name(conn, landing: Path) -> None:
    folder = landing / f"date={DAY}"
    folder.mkdir(parents=True)
    for name, n in (("a.jsonl", 1), ("b.jsonl", 2), ("[ab].jsonl", 3), ("x*?.jsonl", 4)):
        (folder / name).write_text(json.dumps(record(n)) + "\n")
    load_partition(conn, landing, DAY)
    rows = conn.execute("select source_file, event_id from events order by 1").fetchall()
    assert rows == [("[ab].jsonl", "e3"), ("a.jsonl", "e1"), ("b.jsonl", "e2"), ("x*?.jsonl", "e4")]


def test_a_symlink_out_of_the_arrival_folder_is_refused_with_a_reason(
    conn, landing: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    land(landing, f"date={DAY}", [record(1)])
    (landing / f"date={DAY}" / "passwd.jsonl").symlink_to(secret)
    load_partition(conn, landing, DAY)
    rows = conn.execute("select source_file, reason, detail, raw from quarantine").fetchall()
    assert rows == [
        (
            "passwd.jsonl",
            "malformed_record",
            "a symbolic link to a file outside its arrival folder; not read (copy the file "
            "into the folder instead)",
            None,
        )
    ]
    assert conn.execute("select count(*) from events").fetchall() == [(1,)]


def test_a_csv_row_with_more_cells_than_the_header_is_quarantined(conn, landing: Path) -> None:
    folder = landing / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text(
        "user_id,event,timestamp,revenue\n"
        "u1,purchase,2026-11-01T10:00:00Z,1\n"
        "u2,purchase,2026-11-01T10:00:00Z,1,234.50\n"
        'u3,"add,to,cart",2026-11-01T10:00:00Z,2\n'
    )
    load_partition(conn, landing, DAY)
    assert conn.execute("select user_id, event, revenue from events order by 1").fetchall() == [
        ("u1", "purchase", 1.0),
        ("u3", "add,to,cart", 2.0),
    ]
    assert conn.execute("select line_no, reason from quarantine").fetchall() == [
        (3, "malformed_record")
    ]


def test_a_file_whose_lines_end_in_cr_alone_loads_every_record_whole(conn, landing: Path) -> None:
    folder = landing / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "old-mac.jsonl").write_bytes(
        b"".join(json.dumps(record(n)).encode() + b"\r" for n in (1, 2, 3))
    )
    load_partition(conn, landing, DAY)
    rows = conn.execute("select event_id, line_no from events order by 1").fetchall()
    assert rows == [("e1", 1), ("e2", 2), ("e3", 3)]
    assert conn.execute("select count(*) from quarantine").fetchall() == [(0,)]
