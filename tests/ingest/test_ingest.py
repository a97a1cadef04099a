"""Ingest (CONTRACT §2): every record ends in `events` or `quarantine`, nothing doubles."""

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.ingest import load as load_module
from assets.ingest.assets import event_ids_are_unique, events, records_are_conserved
from assets.ingest.load import (
    conservation_failures,
    duplicate_event_ids,
    forget_partition,
    load_partition,
)
from assets.marts.funnels import build_funnels
from pipelines import warehouse
from pipelines.resources import Warehouse
from pipelines.settings import Funnel, Settings

DAY = dt.date(2026, 3, 10)
NEXT_DAY = dt.date(2026, 3, 11)


def folder(landing: Path, day: dt.date = DAY) -> Path:
    path = landing / f"date={day.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_jsonl(path: Path, records: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def record(user: str = "u1", event: str = "page_view", ts="2026-03-10T12:00:00Z", **extra) -> dict:
    return {"user_id": user, "event": event, "timestamp": ts, **extra}


def load(conn: duckdb.DuckDBPyConnection, landing: Path, day: dt.date = DAY):
    return load_partition(conn, landing, day)


def reasons(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute(
        "select source_file, line_no, reason from quarantine order by source_file, line_no"
    ).fetchall()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "events"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "malformed_record"),
        ("[1, 2, 3]", "malformed_record"),
        (json.dumps({"event": "x", "timestamp": "2026-03-10T00:00:00Z"}), "missing_user_id"),
        (json.dumps(record(user="  ")), "missing_user_id"),
        (json.dumps({"user_id": "u", "timestamp": "2026-03-10T00:00:00Z"}), "missing_event"),
        (json.dumps({"user_id": "u", "event": "x"}), "missing_timestamp"),
        (json.dumps(record(ts=None)), "missing_timestamp"),
        (json.dumps(record(ts="not-a-date")), "invalid_timestamp"),
        (json.dumps(record(ts="2026-13-45")), "invalid_timestamp"),
        (json.dumps(record(ts="-infinity")), "invalid_timestamp"),
        (json.dumps(record(ts="infinity")), "invalid_timestamp"),
        (json.dumps(record(ts="2026-03-12T00:00:01Z")), "future_timestamp"),
        (json.dumps(record(properties={"revenue": "free"})), "invalid_revenue"),
        (json.dumps(record(properties={"$revenue": [1]})), "invalid_revenue"),
        (json.dumps(record(user={"id": 1})), "invalid_type"),
        (json.dumps(record(event=42)), "invalid_type"),
        (json.dumps(record(ts=True)), "invalid_type"),
        (json.dumps(record(properties="not an object")), "invalid_type"),
        (json.dumps(record(pad="x" * (1 << 20))), "oversized_record"),
    ],
)
def test_each_bad_record_is_quarantined_with_its_reason(conn, landing, line, reason):
    write_jsonl(folder(landing) / "a.jsonl", [record(user="good"), line])
    result = load(conn, landing)
    assert reasons(conn) == [("a.jsonl", 2, reason)]
    assert (result.records, result.loaded, result.quarantined) == (2, 1, 1)
    raw = conn.execute("select raw from quarantine").fetchone()[0]
    assert raw == line[:65536]


def test_future_timestamp_boundary_is_one_day_after_the_end_of_the_arrival_day(conn, landing):
    write_jsonl(
        folder(landing) / "a.jsonl",
        [record(ts="2026-03-12T00:00:00Z"), record(ts="2026-03-12T00:00:00.001Z")],
    )
    load(conn, landing)
    assert reasons(conn) == [("a.jsonl", 2, "future_timestamp")]


@pytest.mark.parametrize(
    "user_key", ["user_id", "distinct_id", "userId", "anonymous_id", "anonymousId"]
)
@pytest.mark.parametrize("event_key", ["event", "event_type", "event_name", "name"])
def test_user_and_event_aliases(conn, landing, user_key, event_key):
    write_jsonl(
        folder(landing) / "a.jsonl", [{user_key: "u7", event_key: "signup", "ts": 1773144000}]
    )
    load(conn, landing)
    assert conn.execute("select user_id, event from events").fetchall() == [("u7", "signup")]


@pytest.mark.parametrize("time_key", ["timestamp", "time", "ts", "event_time", "originalTimestamp"])
@pytest.mark.parametrize("id_key", ["event_id", "uuid", "messageId", "insert_id", "$insert_id"])
def test_time_and_id_aliases(conn, landing, time_key, id_key):
    write_jsonl(
        folder(landing) / "a.jsonl",
        [{"user_id": "u", "event": "e", time_key: "2026-03-10T08:00:00Z", id_key: "id-1"}],
    )
    load(conn, landing)
    assert conn.execute("select event_id, ts from events").fetchall() == [
        ("id-1", dt.datetime(2026, 3, 10, 8))
    ]


@pytest.mark.parametrize(
    "ts",
    [
        "2026-03-10T08:00:00Z",
        "2026-03-10T10:00:00+02:00",
        "2026-03-10T03:00:00-05:00",
        "2026-03-10 08:00:00",
        "2026-03-10T08:00:00.000000Z",
        1773129600,
        1773129600000,
        "1773129600",
        1773129600.0,
    ],
)
def test_every_timestamp_form_is_stored_as_utc(conn, landing, ts):
    write_jsonl(folder(landing) / "a.jsonl", [record(ts=ts)])
    load(conn, landing)
    assert conn.execute("select ts, event_date from events").fetchone() == (
        dt.datetime(2026, 3, 10, 8),
        dt.date(2026, 3, 10),
    )


def test_mixed_fractional_precision_is_kept(conn, landing):
    write_jsonl(
        folder(landing) / "a.jsonl",
        [
            record(ts="2026-03-10T08:00:00.5Z"),
            record(user="u2", ts="2026-03-10T08:00:00.123456789Z"),
        ],
    )
    load(conn, landing)
    assert sorted(r[0] for r in conn.execute("select ts from events").fetchall()) == [
        dt.datetime(2026, 3, 10, 8, 0, 0, 123456),
        dt.datetime(2026, 3, 10, 8, 0, 0, 500000),
    ]


def test_known_properties_are_lifted_and_all_are_kept(conn, landing):
    props = {
        "$os": "ios",
        "utm_source": "ads",
        "utm_campaign": "spring",
        "$revenue": 12.5,
        "country": "DE",
        "x": 1,
    }
    write_jsonl(folder(landing) / "a.jsonl", [record(event="purchase", properties=props)])
    load(conn, landing)
    row = conn.execute(
        "select platform, channel, campaign, revenue, country, properties from events"
    ).fetchone()
    assert row[:5] == ("ios", "ads", "spring", 12.5, "DE")
    assert json.loads(row[5]) == props


def test_revenue_is_null_when_absent(conn, landing):
    write_jsonl(folder(landing) / "a.jsonl", [record()])
    load(conn, landing)
    assert conn.execute("select revenue from events").fetchone() == (None,)


def test_csv_with_properties_as_columns(conn, landing):
    (folder(landing) / "a.csv").write_text(
        "distinct_id,event_type,time,$os,utm_source,revenue,properties\n"
        'u1,purchase,2026-03-10T08:00:00Z,android,email,9.5,"{""sku"": ""A""}"\n'
        "u2,page_view,1773129600,web,,,\n"
    )
    load(conn, landing)
    rows = conn.execute(
        "select user_id, platform, channel, revenue, properties->>'sku' from events order by 1"
    ).fetchall()
    assert rows == [("u1", "android", "email", 9.5, "A"), ("u2", "web", None, None, None)]


def test_parquet_and_gzip_files(conn, landing, tmp_path):
    day = folder(landing)
    write_jsonl(day / "a.jsonl.gz", [record(user="g1")], gz=True)
    (day / "b.csv.gz").write_bytes(
        gzip.compress(b"user_id,event,timestamp\ng2,view,2026-03-10T01:00:00Z\n")
    )
    scratch = duckdb.connect()
    scratch.execute(
        "copy (select 'g3' as anonymousId, 'view' as event_name, "
        "timestamp '2026-03-10 02:00:00' as originalTimestamp, 'ios' as platform) to $path",
        {"path": str(day / "c.parquet")},
    )
    (day / "d.ndjson").write_text(json.dumps(record(user="g4")) + "\n")
    (day / "e.json").write_text(json.dumps(record(user="g5")) + "\n")
    load(conn, landing)
    users = [r[0] for r in conn.execute("select user_id from events order by 1").fetchall()]
    assert users == ["g1", "g2", "g3", "g4", "g5"]


def test_records_without_id_get_a_deterministic_id_so_resent_copies_are_duplicates(conn, landing):
    write_jsonl(folder(landing) / "a.jsonl", [record(), record()])
    write_jsonl(folder(landing, NEXT_DAY) / "b.jsonl", [record()])
    load(conn, landing, DAY)
    load(conn, landing, NEXT_DAY)
    assert conn.execute("select count(*) from events").fetchone() == (1,)
    assert reasons(conn) == [
        ("a.jsonl", 2, "duplicate_event_id"),
        ("b.jsonl", 1, "duplicate_event_id"),
    ]


def test_duplicate_copy_from_earlier_arrival_day_is_kept_whatever_the_load_order(conn, landing):
    write_jsonl(folder(landing, NEXT_DAY) / "a.jsonl", [record(event_id="e1", event="late_copy")])
    write_jsonl(folder(landing, DAY) / "z.jsonl", [record(event_id="e1", event="early_copy")])
    load(conn, landing, NEXT_DAY)
    assert conn.execute("select event from events").fetchall() == [("late_copy",)]
    load(conn, landing, DAY)
    assert conn.execute("select event, arrival_date from events").fetchall() == [
        ("early_copy", DAY)
    ]
    assert conn.execute("select arrival_date, reason from quarantine").fetchall() == [
        (NEXT_DAY, "duplicate_event_id")
    ]


def test_forgetting_the_day_of_the_kept_copy_promotes_the_next_one(conn, landing):
    early = write_jsonl(folder(landing, DAY) / "a.jsonl", [record(event_id="e1", event="early")])
    write_jsonl(folder(landing, NEXT_DAY) / "a.jsonl", [record(event_id="e1", event="late")])
    load(conn, landing, DAY)
    load(conn, landing, NEXT_DAY)
    early.unlink()
    forget_partition(conn, DAY)
    assert conn.execute("select event from events").fetchall() == [("late",)]
    assert conn.execute("select count(*) from quarantine").fetchone() == (0,)


def _snapshot(conn):
    return (
        conn.execute("select * exclude (line_no) from events order by event_id").fetchall(),
        conn.execute("select * exclude (detail) from quarantine order by all").fetchall(),
    )


def _mixed_landing(landing: Path) -> list[dt.date]:
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    for n, day in enumerate(days):
        write_jsonl(
            folder(landing, day) / "part.jsonl",
            [
                record(user=f"u{n}", event_id="shared"),
                record(user=f"v{n}", event_id=f"own{n}"),
                record(user="late", ts="2026-03-10T23:59:59Z"),
                "{broken",
            ],
        )
    return days


def test_reloads_and_reverse_order_give_identical_tables(tmp_path, landing):
    days = _mixed_landing(landing)
    forward = warehouse.connect(tmp_path / "forward.duckdb")
    for day in days:
        load(forward, landing, day)
    expected = _snapshot(forward)
    for day in [days[1], days[0], days[1]]:
        load_partition(forward, landing, day, reload_unchanged=True)  # read again, not skipped
    assert _snapshot(forward) == expected
    backward = warehouse.connect(tmp_path / "backward.duckdb")
    for day in reversed(days):
        load(backward, landing, day)
    assert _snapshot(backward) == expected
    assert conservation_failures(backward) == []
    assert duplicate_event_ids(backward) == 0


def test_an_unchanged_day_is_not_read_again_and_any_change_makes_it_read(
    conn, landing, monkeypatch, tmp_path
):
    day_folder = folder(landing)
    write_jsonl(day_folder / "a.jsonl", [record("u1"), record("u2", event_id="e2"), "{broken"])
    first = load(conn, landing)
    assert not first.unchanged and (first.loaded, first.quarantined) == (2, 1)

    def never(*args, **kwargs):
        raise AssertionError("an unchanged day's files were read")

    with monkeypatch.context() as patched:
        patched.setattr(load_module, "_stage_day", never)
        again = load(conn, landing)
    assert again.unchanged and "unchanged since its last load" in again.summary()
    assert (again.files, again.records, again.loaded, again.quarantined) == (1, 3, 2, 1)
    logged = conn.execute(
        "select files, records, loaded, quarantined, duplicates, unreadable_files "
        "from ingest_log order by finished_at"
    ).fetchall()
    assert logged == [(1, 3, 2, 1, 0, 0)] * 2  # each run's load is logged, with the same counts

    # A copy of e2 from an earlier arrival day, loaded later, is the one kept: the unchanged
    # day's next load logs its rows as they are now, as reading it again would.
    earlier = DAY - dt.timedelta(days=1)
    write_jsonl(folder(landing, earlier) / "b.jsonl", [record("u2", event_id="e2")])
    load(conn, landing, earlier)
    after = load(conn, landing)
    assert after.unchanged
    assert (after.loaded, after.quarantined, after.duplicates) == (1, 2, 1)
    # Every change to the files is read: content, a new file, a removed one.
    write_jsonl(day_folder / "a.jsonl", [record("u1"), record("u3", event_id="e3")])
    assert not load(conn, landing).unchanged
    assert load(conn, landing).unchanged
    write_jsonl(day_folder / "c.jsonl", [record("u4", event_id="e4")])
    assert load(conn, landing).loaded == 3
    (day_folder / "c.jsonl").unlink()
    assert load(conn, landing).loaded == 2
    # A file copied in with the old one's size and modification time (as `cp -p` keeps them).
    same_size = tmp_path / "a.jsonl"
    write_jsonl(same_size, [record("u1"), record("u5", event_id="e5")])
    old = (day_folder / "a.jsonl").stat()
    assert same_size.stat().st_size == old.st_size
    os.utime(same_size, ns=(old.st_atime_ns, old.st_mtime_ns))
    shutil.copy2(same_size, day_folder / "a.jsonl")
    assert (day_folder / "a.jsonl").stat().st_mtime_ns == old.st_mtime_ns
    assert not load(conn, landing).unchanged
    assert conn.execute("select count(*) from events where user_id = 'u5'").fetchall() == [(1,)]
    # ...and so is a change of aliases (the same files read another way).
    assert not load_partition(conn, landing, DAY, aliases={"user_id": ["who"]}).unchanged
    assert load_partition(conn, landing, DAY, aliases={"user_id": ["who"]}).unchanged
    # A forgotten day is read again by the next load.
    forget_partition(conn, DAY)
    assert conn.execute(
        "select count(*) from events where arrival_date = $d", {"d": DAY}
    ).fetchall() == [(0,)]
    reloaded = load(conn, landing)
    assert not reloaded.unchanged and reloaded.loaded == 2


def test_a_day_with_an_unreadable_file_is_read_again_by_every_load(conn, landing):
    """Its cause may pass (a file still being copied, too many open files): only reading the
    day again would load it, so no load of it is taken as the last word."""
    write_jsonl(folder(landing) / "a.jsonl", [record("u1")])
    (folder(landing) / "notes.txt").write_text("not an event file\n")
    first = load(conn, landing)
    assert first.unreadable_files == 1 and first.loaded == 1
    again = load(conn, landing)
    assert not again.unchanged and (again.unreadable_files, again.loaded) == (1, 1)
    (folder(landing) / "notes.txt").unlink()
    assert not load(conn, landing).unchanged
    assert load(conn, landing).unchanged


def _user_keys(conn) -> dict[str, int]:
    """The user-key dictionary, after checking it is one distinct key per user and that every
    stored copy carries its user's key."""
    rows = conn.execute("select user_id, user_key from user_keys").fetchall()
    keys = dict(rows)
    assert len(rows) == len(keys) == len(set(keys.values()))
    copies = conn.execute("select user_id, user_key from event_copies").fetchall()
    assert copies and all(keys[user] == key for user, key in copies)
    return keys


def test_every_user_gets_one_key_that_reloads_never_change(tmp_path, landing):
    days = _mixed_landing(landing)
    conn = warehouse.connect(tmp_path / "keys.duckdb")
    for day in days:
        load(conn, landing, day)
    keys = _user_keys(conn)
    assert set(keys) == {"u0", "u1", "u2", "v0", "v1", "v2", "late"}
    assert sorted(keys.values()) == list(range(1, 8))
    for day in [days[1], days[0]]:
        load_partition(conn, landing, day, reload_unchanged=True)
    assert _user_keys(conn) == keys
    keyed = conn.execute("select event_id, user_id from keyed_events order by all").fetchall()
    assert keyed == conn.execute("select event_id, user_id from events order by all").fetchall()


def test_users_whose_records_were_all_quarantined_get_no_key(conn, landing):
    write_jsonl(folder(landing) / "a.jsonl", [record(), record(user="bad", ts="not-a-date")])
    load(conn, landing)
    assert set(_user_keys(conn)) == {"u1"}


def _without_user_keys(conn: duckdb.DuckDBPyConnection) -> None:
    """Turn the tables back into what they were before user keys."""
    conn.execute("drop view keyed_events")
    conn.execute("drop table user_keys")
    conn.execute("alter table event_copies drop column user_key")


def test_a_warehouse_from_before_user_keys_is_keyed_on_the_next_load(tmp_path, landing):
    days = _mixed_landing(landing)
    conn = warehouse.connect(tmp_path / "old.duckdb")
    load(conn, landing, days[0])
    _without_user_keys(conn)
    load(conn, landing, days[1])
    assert set(_user_keys(conn)) == {"u0", "u1", "v0", "v1", "late"}
    assert conn.execute("select count(*) from keyed_events").fetchall() == [(4,)]


def test_funnels_on_a_warehouse_from_before_user_keys_key_it_first(tmp_path, landing):
    write_jsonl(
        folder(landing) / "a.jsonl",
        [record(user="a", event="page_view"), record(user="a", event="signup")],
    )
    conn = warehouse.connect(tmp_path / "old.duckdb")
    load(conn, landing)
    _without_user_keys(conn)
    build_funnels(conn, Settings(home=tmp_path, funnels=(Funnel("f", ("page_view", "signup")),)))
    assert set(_user_keys(conn)) == {"a"}
    assert conn.execute("select user_id, furthest_step from funnel_attempts").fetchall() == [
        ("a", 2)
    ]


def test_a_missing_folder_is_nothing_arrived(conn, landing):
    result = load(conn, landing)
    assert result.nothing_arrived
    assert "nothing arrived" in result.summary()
    assert (result.records, result.loaded) == (0, 0)


def test_blank_lines_bom_and_crlf(conn, landing):
    (folder(landing) / "a.jsonl").write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(record(user="a")).encode()
        + b"\r\n\r\n"
        + json.dumps(record(user="b")).encode()
        + b"\r\n"
    )
    result = load(conn, landing)
    assert conn.execute("select user_id, line_no from events order by 1").fetchall() == [
        ("a", 1),
        ("b", 3),
    ]
    assert result.records == 2


EPOCH = 1773145800  # 2026-03-10T12:30:00Z, as epoch seconds


def _without_space_separators(text: str) -> str:
    """The reference for the ids' and names' trim: Unicode space separators (category Zs) off
    both ends; tabs and line breaks are not spaces there and stay."""
    spaces = "".join(chr(c) for c in range(0x3001) if unicodedata.category(chr(c)) == "Zs")
    return text.strip(spaces)


@pytest.mark.parametrize(
    "padded",
    [
        " u1 ",
        "u2",
        "\u00a0u3\u3000",  # no-break space, ideographic space
        "u4\u2003",  # an ASCII id that ends in an em space
        "\u00e9l\u00e8ve",  # non-ASCII, no space
        " \u00e9t\u00e9 ",
        "\u2009",  # nothing but a space: no user
    ],
)
def test_ids_names_and_times_are_read_without_surrounding_spaces(conn, landing, padded):
    write_jsonl(
        folder(landing) / "a.jsonl",
        [
            record(user=padded, event=f" {padded}signup ", ts=" 2026-03-10T12:00:00Z "),
            {"user_id": padded, "anonymous_id": f"{padded}d", "event": "e", "timestamp": EPOCH},
        ],
    )
    load(conn, landing)
    user = _without_space_separators(padded)
    if not user:
        assert conn.execute("select distinct reason from quarantine").fetchall() == [
            ("missing_user_id",)
        ]
        return
    assert conn.execute("select user_id, event, ts from events order by ts").fetchall() == [
        (user, _without_space_separators(f" {padded}signup "), dt.datetime(2026, 3, 10, 12)),
        (user, "e", dt.datetime(2026, 3, 10, 12, 30)),
    ]
    assert conn.execute("select anonymous_id, user_id from identities").fetchall() == [
        (_without_space_separators(f"{padded}d"), user)
    ]


def test_invalid_utf8_line_is_malformed_and_the_rest_loads(conn, landing):
    (folder(landing) / "a.jsonl").write_bytes(
        json.dumps(record(user="a")).encode()
        + b'\n{"user_id": "\xff\xfe"}\n'
        + json.dumps(record(user="c")).encode()
        + b"\n"
    )
    load(conn, landing)
    assert reasons(conn) == [("a.jsonl", 2, "malformed_record")]
    assert conn.execute("select user_id, line_no from events order by 1").fetchall() == [
        ("a", 1),
        ("c", 3),
    ]


def test_unreadable_files_are_reported_and_the_partition_still_loads(conn, landing):
    day = folder(landing)
    write_jsonl(day / "good.jsonl", [record(user="ok")])
    (day / "empty.jsonl").write_text("")
    (day / "broken.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    (day / "notes.xlsx").write_text("what")
    payload = gzip.compress(
        "".join(json.dumps(record(user=f"z{i}")) + "\n" for i in range(3000)).encode()
    )
    (day / "truncated.jsonl.gz").write_bytes(payload[: len(payload) // 2])
    result = load(conn, landing)
    assert result.unreadable_files == 3
    unreadable = conn.execute(
        "select source_file, reason from quarantine where line_no is null order by 1"
    ).fetchall()
    assert unreadable == [
        ("broken.parquet", "malformed_record"),
        ("notes.xlsx", "malformed_record"),
        ("truncated.jsonl.gz", "malformed_record"),
    ]
    salvaged = conn.execute(
        "select count(*) from events where source_file = 'truncated.jsonl.gz'"
    ).fetchone()[0]
    assert 0 < salvaged < 3000
    assert conn.execute("select count(*) from events where user_id = 'ok'").fetchone() == (1,)
    assert conservation_failures(conn) == []


def test_a_file_the_reader_refuses_whole_counts_each_of_its_records(conn, landing):
    day = folder(landing)
    # A repeated column name: DuckDB cannot take the file, yet its 3 records can be counted.
    (day / "repeated.csv").write_text(
        "user_id,event,timestamp,event\n"
        "u1,view,2026-03-10T01:00:00Z,x\n\n"
        "u2,view,2026-03-10T02:00:00Z,y\n"
        "u3,view,2026-03-10T03:00:00Z,z\n"
    )
    write_jsonl(day / "fine.jsonl", [record(user="ok")])
    result = load(conn, landing)
    assert (result.records, result.loaded, result.unreadable_files) == (4, 1, 1)
    rows = conn.execute(
        "select line_no, reason, detail, raw from quarantine where source_file = 'repeated.csv' "
        "order by line_no"
    ).fetchall()
    assert [(line, reason) for line, reason, _, _ in rows] == [
        (2, "malformed_record"),
        (4, "malformed_record"),
        (5, "malformed_record"),
    ]
    assert all("unique, non-empty column names" in detail for _, _, detail, _ in rows)
    assert rows[0][3] == "u1,view,2026-03-10T01:00:00Z,x"
    assert conservation_failures(conn) == []


def test_a_file_duckdb_may_not_open_counts_each_line(conn, landing, monkeypatch):
    from assets.ingest import load as ingest_load

    day = folder(landing)
    write_jsonl(day / "locked.jsonl", [record(user=f"u{i}") for i in range(4)])

    def permission_denied(*args, **kwargs):
        raise duckdb.IOException('Cannot open file "locked.jsonl": Permission denied')

    monkeypatch.setattr(ingest_load, "_run_stage", permission_denied)
    result = load(conn, landing)
    assert (result.records, result.quarantined, result.unreadable_files) == (4, 4, 1)
    assert conn.execute(
        "select line_no, reason, detail like '%Permission denied%' from quarantine order by 1"
    ).fetchall() == [(n, "malformed_record", True) for n in range(1, 5)]


def test_a_file_whose_records_cannot_be_counted_is_one_row_that_says_so(conn, landing):
    day = folder(landing)
    (day / "scrambled.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 not a gzip stream at all" * 50)
    (day / "garbled.parquet").write_bytes(b"PAR1 not parquet either PAR1")
    result = load(conn, landing)
    assert (result.records, result.unreadable_files) == (2, 2)
    rows = conn.execute("select source_file, line_no, reason, detail from quarantine order by 1")
    rows = rows.fetchall()
    assert [(f, n, r) for f, n, r, _ in rows] == [
        ("garbled.parquet", None, "malformed_record"),
        ("scrambled.jsonl.gz", None, "malformed_record"),
    ]
    assert "could not be counted" in rows[0][3]
    assert conservation_failures(conn) == []


def test_csv_header_changing_between_files_and_ragged_rows(conn, landing):
    day = folder(landing)
    (day / "a.csv").write_text("user_id,event,timestamp\nu1,view,2026-03-10T01:00:00Z\n")
    (day / "b.csv").write_text(
        "ts,platform,name,distinct_id\n2026-03-10T02:00:00Z,ios,view,u2\nonly,two\n"
    )
    load(conn, landing)
    assert conn.execute("select user_id, platform from events order by 1").fetchall() == [
        ("u1", None),
        ("u2", "ios"),
    ]
    assert reasons(conn) == [("b.csv", 3, "malformed_record")]


GARBAGE = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda u, e, t: json.dumps({"user_id": u, "event": e, "timestamp": t}),
        st.one_of(st.none(), st.text(max_size=3), st.integers()),
        st.one_of(st.none(), st.sampled_from(["view", "buy", ""]), st.integers()),
        st.one_of(
            st.none(),
            st.sampled_from(["2026-03-10T01:00:00Z", "2026-03-10T01:00:00+09:00", "junk"]),
            st.integers(min_value=-(10**15), max_value=10**15),
        ),
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(GARBAGE, max_size=30))
def test_random_and_garbage_lines_never_break_conservation(tmp_path_factory, lines):
    base = tmp_path_factory.mktemp("garbage")
    landing = base / "landing"
    path = folder(landing) / "g.jsonl"
    # One record per line: a line break inside a generated value would split it (lone CR too).
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    path.write_bytes("\n".join(lines).encode("utf-8", "replace"))
    conn = warehouse.connect(base / "w.duckdb")
    try:
        result = load(conn, landing)
        non_blank = sum(1 for line in lines if line.strip(" \t"))
        assert result.records == non_blank
        assert result.records == result.loaded + result.quarantined
        assert conservation_failures(conn) == []
    finally:
        conn.close()


def test_events_asset_materializes_a_range_and_checks_pass(home):
    landing = home / "landing" / "events"
    for n in range(3):
        day = DAY + dt.timedelta(days=n)
        write_jsonl(folder(landing, day) / "a.jsonl", [record(user=f"u{n}", event_id="same"), "{x"])
    result = dg.materialize(
        [events, records_are_conserved, event_ids_are_unique],
        resources={"warehouse": Warehouse(home=str(home))},
        tags={
            "dagster/asset_partition_range_start": "2026-03-10",
            "dagster/asset_partition_range_end": "2026-03-12",
        },
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"records_are_conserved", "event_ids_are_unique"}
    assert all(c.passed for c in checks)
    metadata = result.asset_materializations_for_node("events")[0].metadata
    assert metadata["dagster/row_count"].value == 1
    assert metadata["quarantined"].value == 5
    with warehouse.reader(home) as conn:
        assert conn.execute("select arrival_date from events").fetchall() == [(DAY,)]
    # One more day: the UI shows that partition's rows, and the warehouse total beside them.
    later = DAY + dt.timedelta(days=3)
    write_jsonl(folder(landing, later) / "a.jsonl", [record(user="u7"), record(user="u8")])
    result = dg.materialize(
        [events],
        resources={"warehouse": Warehouse(home=str(home))},
        partition_key=later.isoformat(),
    )
    metadata = result.asset_materializations_for_node("events")[0].metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["events_in_warehouse"].value == 3


def test_conservation_check_fails_when_a_row_goes_missing(home):
    landing = home / "landing" / "events"
    write_jsonl(folder(landing) / "a.jsonl", [record(), record(user="u2")])
    with warehouse.writer(home) as conn:
        load(conn, landing)
        conn.execute("delete from event_copies where user_id = 'u2'")
        assert conservation_failures(conn) != []


@pytest.mark.slow
def test_a_100_mb_single_line_is_quarantined_with_bounded_memory(tmp_path):
    landing = tmp_path / "landing" / "events"
    day = folder(landing)
    with open(day / "huge.jsonl", "w") as out:
        out.write(json.dumps(record(user="before")) + "\n")
        out.write('{"user_id": "u", "event": "e", "timestamp": 1, "pad": "')
        out.write("x" * (100 * 1024 * 1024))
        out.write('"}\n')
        out.write(json.dumps(record(user="after")) + "\n")
    script = (
        "import datetime as dt, re, sys\n"
        "from pathlib import Path\n"
        "from assets.ingest.load import load_partition\n"
        "from pipelines import warehouse\n"
        f"conn = warehouse.connect(Path({str(tmp_path / 'w.duckdb')!r}))\n"
        f"r = load_partition(conn, Path({str(landing)!r}), dt.date(2026, 3, 10))\n"
        "rows = conn.execute('select reason, line_no, length(raw) from quarantine').fetchall()\n"
        # VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork+exec and would report the
        # pytest parent's size (the embedding model loaded by earlier tests).
        "peak_kb = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "print(r.loaded, rows, peak_kb // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded, rest = done.stdout.split(" ", 1)
    rows, peak_mb = rest.rsplit(" ", 1)
    assert int(loaded) == 2
    assert rows.strip() == "[('oversized_record', 2, 65536)]"
    assert int(peak_mb) < 1024, f"peak memory {peak_mb} MB"
