"""The order in which a field's source names are tried (CONTRACT §1 `aliases`, §2), whichever
way parse_records.sql reads them: plain top-level names from the record's one json_transform,
dotted names with json_extract (assets/ingest/fields.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assets.ingest.fields import source_paths
from assets.ingest.load import load_partition

DAY = dt.date(2026, 3, 10)


def land(landing: Path, *records: dict) -> None:
    folder = landing / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "events"


def test_plain_configured_names_are_read_from_the_record_struct_not_from_paths() -> None:
    sources = source_paths({"timestamp": ("event_date",), "revenue": ("dollar_value",)})
    parameters = sources.parameters()
    record_keys = list(json.loads(parameters["record_spec"]))
    assert parameters["configured_record_paths"] == []
    assert sources.positions["timestamp"]["configured_record_keys"] == [
        1 + record_keys.index("event_date")
    ]
    # The vendors' top-level names too: their records are not parsed a second time.
    assert parameters["vendor_record_paths"] == []
    assert "previousId" in record_keys and "event_properties" in record_keys


def test_a_dotted_configured_name_keeps_every_configured_name_of_its_field_a_path() -> None:
    sources = source_paths({"platform": ("device", "context.device.type")})
    assert sources.groups["configured_record"] == ['$."device"', '$."context"."device"."type"']
    assert sources.positions["platform"]["configured_record"] == [1, 2]
    assert sources.positions["platform"]["configured_record_keys"] == []


@pytest.mark.parametrize(
    "aliases, expected",
    [
        # Plain names: the first configured name the record holds, before the contract's.
        (("seen_at", "event_date"), dt.datetime(2026, 3, 9, 8)),
        (("event_date", "seen_at"), dt.datetime(2026, 3, 9, 12)),
        # A dotted name first: still tried first, the plain one after it.
        (("meta.at", "event_date"), dt.datetime(2026, 3, 9, 6)),
        (("event_date", "meta.at"), dt.datetime(2026, 3, 9, 12)),
        # Names the record lacks are skipped; the contract's `timestamp` comes last.
        (("missing", "meta.missing"), dt.datetime(2026, 3, 1)),
    ],
)
def test_configured_names_are_tried_in_the_order_written(
    conn, landing, aliases: tuple[str, ...], expected: dt.datetime
) -> None:
    land(
        landing,
        {
            "user_id": "u1",
            "event": "e",
            "timestamp": "2026-03-01T00:00:00Z",
            "event_date": "2026-03-09T12:00:00Z",
            "seen_at": "2026-03-09T08:00:00Z",
            "meta": {"at": "2026-03-09T06:00:00Z"},
        },
    )
    load_partition(conn, landing, DAY, {"timestamp": aliases})
    assert conn.execute("select ts from events").fetchall() == [(expected,)]


def test_a_configured_plain_name_holding_json_null_counts_as_absent(conn, landing) -> None:
    land(
        landing,
        {"user_id": "u1", "event": "e", "timestamp": "2026-03-01T00:00:00Z", "event_date": None},
    )
    load_partition(conn, landing, DAY, {"timestamp": ("event_date",)})
    assert conn.execute("select ts from events").fetchall() == [(dt.datetime(2026, 3, 1),)]
