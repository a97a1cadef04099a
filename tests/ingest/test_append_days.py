"""Arrival days after every stored one, loaded by one `load_range` (a backfill, a catch-up of
several days), are replaced together (sql/staging/append_days.sql) and must leave every table
as one `load_partition` per day leaves it: on top of days already loaded, whose copies the new
days re-send and whose anonymous copies their links re-attribute; and the publish journal must
let the standby catch up to the result.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from random_arrivals import DAYS, random_record, write_day
from test_load_range import EVERY_DAY, land_day, load_both, tables

from assets.ingest import load
from assets.ingest.load import load_partition, load_range
from pipelines import warehouse


@pytest.fixture
def together(monkeypatch: pytest.MonkeyPatch) -> list[list[dt.date]]:
    """The staged days of every batch replaced together, in order."""
    batches: list[list[dt.date]] = []
    append_days = load._append_days

    def recording(conn, days, staged):
        batches.append(list(staged))
        return append_days(conn, days, staged)

    monkeypatch.setattr(load, "_append_days", recording)
    return batches


@pytest.mark.parametrize("seed", range(4))
def test_days_after_the_stored_ones_equal_one_load_per_day_in_every_table(
    tmp_path: Path, seed: int, together: list[list[dt.date]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "APPEND_BATCH_DAYS", 4)  # the later days cross batches
    rng = random.Random(seed)
    landing = tmp_path / "landing" / "events"
    shared_ids: list[str] = []
    for day in DAYS:
        land_day(landing, rng, day, shared_ids)
    sequential = warehouse.connect(tmp_path / "sequential.duckdb")
    ranged = warehouse.connect(tmp_path / "ranged.duckdb")
    try:
        stored = rng.randint(1, 4)
        for day in DAYS[:stored]:
            load_partition(sequential, landing, day)
            load_partition(ranged, landing, day)
        later = EVERY_DAY[EVERY_DAY.index(DAYS[stored - 1]) + 1 :]
        load_both(sequential, ranged, landing, later)
        assert together and set().union(*together) <= set(later)
        # A re-sent day after it takes the day-by-day path, on the result.
        land_day(landing, rng, DAYS[stored], shared_ids)
        load_both(sequential, ranged, landing, [DAYS[stored]])
    finally:
        sequential.close()
        ranged.close()


def test_a_link_re_attributes_stored_anonymous_events_as_daily_loads_do(
    tmp_path: Path, together: list[list[dt.date]]
) -> None:
    landing = tmp_path / "landing" / "events"

    def record(day: dt.date, hour: int, **ids: str) -> dict:
        return {"event": "page_view", "timestamp": f"{day}T{hour:02d}:00:00Z", **ids}

    first, second, third = DAYS[:3]
    write_day(
        landing, first, [record(first, 9, anonymous_id="d1"), record(first, 10, user_id="u9")]
    )
    # The sign-up of d1 as u1 arrives on the second day; an earlier one (as u2) on the third.
    write_day(landing, second, [record(second, 8, anonymous_id="d1", user_id="u1")])
    write_day(landing, third, [record(first, 5, anonymous_id="d1", user_id="u2")])
    sequential = warehouse.connect(tmp_path / "sequential.duckdb")
    ranged = warehouse.connect(tmp_path / "ranged.duckdb")
    try:
        load_partition(sequential, landing, first)
        load_partition(ranged, landing, first)
        load_both(sequential, ranged, landing, [second, third])
        assert together == [[second, third]]
        persons = ranged.execute(
            "select distinct user_id from events where distinct_id = 'd1'"
        ).fetchall()
        assert persons == [("u2",)]
        # Each day's load recorded its own change: d1's day moved from d1 to u1, then to u2.
        changes = tables(ranged)["mart_changes"]
        assert {(user, str(day)) for _, _, user, day in changes} >= {
            ("d1", str(first)),
            ("u1", str(first)),
            ("u2", str(first)),
        }
    finally:
        sequential.close()
        ranged.close()


def test_the_standby_catches_up_to_days_replaced_together(
    home: Path, together: list[list[dt.date]], monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[warehouse.Build] = []
    start_build = warehouse.start_build
    monkeypatch.setattr(
        warehouse, "start_build", lambda h: builds.append(start_build(h)) or builds[-1]
    )
    landing = home / "landing" / "events"
    rng = random.Random(5)
    shared_ids: list[str] = []
    for day in DAYS:
        write_day(landing, day, [random_record(rng, day, shared_ids) for _ in range(15)])
    for day in DAYS[:2]:  # two builds: the standby exists from the third on
        with warehouse.writer(home) as conn:
            load_partition(conn, landing, day)
    with warehouse.writer(home) as conn:
        load_range(conn, landing, DAYS[2:])
    assert together == [DAYS[2:]]
    with warehouse.writer(home) as conn:
        own = conn.execute("select current_database()").fetchall()[0][0]
        conn.execute(f"attach '{warehouse.published_path(home)}' as published_now (read_only)")
        for table in ("event_copies", "quarantine", "identities", "user_keys", "mart_changes"):
            mine = conn.execute(f'select * from "{own}".main.{table} order by all').fetchall()
            theirs = conn.execute(f"select * from published_now.main.{table} order by all")
            assert mine == theirs.fetchall(), table
        conn.execute("detach published_now")
    assert builds[-1].caught_up  # by the journal, not a copy of the published file
