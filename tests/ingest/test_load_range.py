"""A range of arrival days loaded together (`load_range`, the backfill path) leaves every table
as one `load_partition` per day, in the same order, leaves it: row for row.

Random arrival histories (tests/random_arrivals.py: late events, re-sent copies, anonymous
visits linked by a later sign-up) plus files that quarantine (invalid JSON, a line that is not
UTF-8, a ragged CSV row), loaded both ways into two warehouses: first ranges, then re-runs of
days already loaded with other content, ranges out of order after later days were loaded, and
days with nothing arrived. The validation batch is made a week (two or three days with
files) or 40 records, so ranges cross batches.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest
from random_arrivals import DAYS, random_record, write_day

from assets.ingest import load
from assets.ingest.load import forget_partition, load_partition, load_range
from pipelines import warehouse

# Every table ingest writes, sorted by every column (no row order). ingest_log's clock columns
# say when each load ran, which differs between any two loads.
TABLES = {
    "event_copies": "select * from event_copies",
    "quarantine": "select * from quarantine",
    "ingest_log": "select * exclude (started_at, finished_at) from ingest_log",
    "identities": "select * from identities",
    "user_keys": "select * from user_keys",
    "mart_changes": "select * from mart_changes",
    "event_date_zone": "select * from event_date_zone",
    "load_fingerprints": "select * from load_fingerprints",
}
# The days that have folders, and days between them that never get one (nothing arrived).
EVERY_DAY = [DAYS[0] + dt.timedelta(days=n) for n in range((DAYS[-1] - DAYS[0]).days + 1)]


def tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {name: conn.execute(f"{sql} order by all").fetchall() for name, sql in TABLES.items()}


def wrongly_kept(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Event ids whose kept copy is not their earliest by (arrival day, file, line), or whose
    other copies are not quarantined as duplicates: the rule itself, so that a mistake both
    ways of loading share is caught too."""
    return conn.execute(
        """
        with ranked as (
            select event_id, arrival_date, source_file, line_no, kept, row_number() over (
                partition by event_id order by arrival_date, source_file, line_no
            ) = 1 as earliest
            from event_copies
        )
        select event_id, arrival_date, source_file, line_no from ranked where kept <> earliest
        union all
        select event_id, arrival_date, source_file, line_no from ranked where not earliest
        except all
        select event_id, arrival_date, source_file, line_no from quarantine
        where reason = 'duplicate_event_id'
        """
    ).fetchall()


def land_day(landing: Path, rng: random.Random, day: dt.date, shared_ids: list[str]) -> None:
    """A day's records, and now and then files whose records are quarantined; the file names
    repeat across days, as a daily export's do."""
    records = [random_record(rng, day, shared_ids) for _ in range(rng.randint(1, 20))]
    write_day(landing, day, records)
    folder = landing / f"date={day.isoformat()}"
    for extra in folder.glob("extra*"):
        extra.unlink()
    if rng.random() < 0.5:
        lines = [b'{"user_id": "u1", "event": "page_view"', b"\xff\xfe not utf-8"]
        lines.insert(rng.randrange(3), b'{"user_id": "u2", "event": "x", "timestamp": 1}')
        (folder / "extra.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    if rng.random() < 0.3:
        (folder / "extra.csv").write_text(
            "user_id,event,timestamp\nu3,signup,2026-03-03T10:00:00Z\nu4,purchase\n"
        )


def load_both(
    sequential: duckdb.DuckDBPyConnection,
    ranged: duckdb.DuckDBPyConnection,
    landing: Path,
    days: list[dt.date],
    reloaded: duckdb.DuckDBPyConnection | None = None,
) -> None:
    """Load `days` one by one and as a range. With `reloaded`, both skip the days whose files
    did not change, as runs do, and a third warehouse that reads every day again must end the
    same; without, both read every day again."""
    skip = reloaded is not None
    expected = [load_partition(sequential, landing, day, reload_unchanged=not skip) for day in days]
    results = load_range(ranged, landing, days, reload_unchanged=not skip)
    assert [r.summary() for r in results] == [r.summary() for r in expected]
    assert [r.by_reason for r in results] == [r.by_reason for r in expected]
    assert tables(ranged) == tables(sequential), f"after loading {days}"
    assert wrongly_kept(ranged) == []
    if reloaded is not None:
        for day in days:
            load_partition(reloaded, landing, day, reload_unchanged=True)
        assert tables(reloaded) == tables(sequential), f"skipped, then read again: {days}"


@pytest.mark.parametrize("seed", range(4))
def test_a_range_load_equals_one_load_per_day_in_every_table(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "BATCH_DAYS", 7)
    monkeypatch.setattr(load, "APPEND_BATCH_DAYS", 7)
    monkeypatch.setattr(load, "BATCH_RECORDS", 40)  # some batches end by records, not days
    rng = random.Random(seed)
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    sequential = warehouse.connect(tmp_path / "sequential.duckdb")
    ranged = warehouse.connect(tmp_path / "ranged.duckdb")
    # Even seeds skip unchanged days as runs do, against a warehouse that reads them again.
    reloaded = warehouse.connect(tmp_path / "reloaded.duckdb") if seed % 2 == 0 else None
    try:
        for day in DAYS:
            land_day(landing, rng, day, shared_ids)
        # A first backfill of the later half, then the earlier half after it (out of order).
        middle = EVERY_DAY.index(DAYS[len(DAYS) // 2])
        load_both(sequential, ranged, landing, EVERY_DAY[middle:], reloaded)
        load_both(sequential, ranged, landing, EVERY_DAY[:middle], reloaded)
        for _ in range(4):
            # Re-sent days with other content, then a random range (re-runs included).
            for day in rng.sample(DAYS, 3):
                land_day(landing, rng, day, shared_ids)
            first = rng.randrange(len(EVERY_DAY))
            days = EVERY_DAY[first : first + rng.randint(1, 12)]
            if rng.random() < 0.3:
                days = list(reversed(days))  # a range given latest first
            load_both(sequential, ranged, landing, days, reloaded)
    finally:
        sequential.close()
        ranged.close()
        if reloaded is not None:
            reloaded.close()


@pytest.mark.parametrize("skip", [True, False], ids=["unchanged-skipped", "read-again"])
def test_a_day_given_twice_in_a_range_is_loaded_twice_like_two_loads(
    tmp_path: Path, skip: bool
) -> None:
    rng = random.Random(7)
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    for day in DAYS[:3]:
        land_day(landing, rng, day, shared_ids)
    sequential = warehouse.connect(tmp_path / "sequential.duckdb")
    ranged = warehouse.connect(tmp_path / "ranged.duckdb")
    reloaded = warehouse.connect(tmp_path / "reloaded.duckdb") if skip else None
    try:
        days = [DAYS[1], DAYS[0], DAYS[1], DAYS[2]]
        load_both(sequential, ranged, landing, days, reloaded)
        assert len(tables(ranged)["ingest_log"]) == 4
        results = load_range(ranged, landing, days, reload_unchanged=not skip)
        assert [r.unchanged for r in results] == [skip] * 4
    finally:
        sequential.close()
        ranged.close()
        if reloaded is not None:
            reloaded.close()


def test_forgetting_a_day_after_a_range_load_equals_forgetting_it_after_daily_loads(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    for day in DAYS:
        land_day(landing, rng, day, shared_ids)
    sequential = warehouse.connect(tmp_path / "sequential.duckdb")
    ranged = warehouse.connect(tmp_path / "ranged.duckdb")
    try:
        load_both(sequential, ranged, landing, DAYS)
        forget_partition(sequential, DAYS[2])
        forget_partition(ranged, DAYS[2])
        assert tables(ranged) == tables(sequential)
    finally:
        sequential.close()
        ranged.close()
