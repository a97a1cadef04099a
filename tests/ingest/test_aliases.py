"""`aliases` in eventpulse.yaml, and records in shapes nobody names (CONTRACT §1 `aliases`, §2)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest

from assets.ingest.fields import (
    CONFIGURED_MACROS,
    GROUP_SLOTS,
    MAX_SOURCES,
    json_path,
    source_lists,
    source_paths,
)
from assets.ingest.load import field_spelling, load_partition
from assets.marts.cohorts import build_cohorts
from assets.marts.sessions_users import build_sessions, build_users
from pipelines.errors import EventpulseError
from pipelines.settings import Settings, parse_settings

DAY = dt.date(2026, 3, 10)
CDNOW = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "cdnow" / "cdnow_events.csv"


def land(landing: Path, name: str, text: str, day: dt.date = DAY) -> None:
    folder = landing / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "events"


def test_a_configured_alias_is_tried_before_the_built_in_names(conn, landing) -> None:
    land(
        landing,
        "a.jsonl",
        jsonl(
            {
                "user_id": "u1",
                "event": "e",
                "timestamp": "2026-03-01T00:00:00Z",
                "event_date": "2026-03-09T12:00:00Z",
            }
        ),
    )
    load_partition(conn, landing, DAY, {"timestamp": ("event_date",)})
    assert conn.execute("select ts from events").fetchall() == [(dt.datetime(2026, 3, 9, 12),)]


def test_a_dotted_alias_reads_nested_json_in_the_record_or_in_its_properties(conn, landing) -> None:
    land(
        landing,
        "a.jsonl",
        jsonl(
            {
                "who": {"id": "u1"},
                "what": "e",
                "when": 1773100800,
                "context": {"device": {"type": "tablet"}},
                "properties": {"src": {"name": "ads"}},
            }
        ),
    )
    aliases = {
        "user_id": ("who.id",),
        "event": ("what",),
        "timestamp": ("when",),
        "platform": ("context.device.type",),
        "channel": ("properties.src.name",),
    }
    load_partition(conn, landing, DAY, aliases)
    rows = conn.execute("select user_id, event, ts, platform, channel from events").fetchall()
    assert rows == [("u1", "e", dt.datetime(2026, 3, 10), "tablet", "ads")]


def test_csv_columns_match_field_names_whatever_their_case(conn, landing) -> None:
    land(
        landing, "a.csv", "User_id,Event_Type,Event_Date,Dollar_Value\n7,purchase,2026-03-09,12.5\n"
    )
    load_partition(conn, landing, DAY, {"timestamp": ("event_date",), "revenue": ("dollar_value",)})
    rows = conn.execute("select user_id, event, ts, revenue from events").fetchall()
    assert rows == [("7", "purchase", dt.datetime(2026, 3, 9), 12.5)]


def test_a_column_keeps_its_spelling_when_the_field_spelling_is_taken() -> None:
    assert field_spelling(["User_ID", "user_id", "Platform"], ["user_id", "platform"]) == [
        "User_ID",
        "user_id",
        "platform",
    ]


def test_a_record_in_a_shape_nobody_names_says_which_field_is_missing(conn, landing) -> None:
    land(landing, "a.jsonl", jsonl({"actor": "u1", "verb": "clicked", "at": "2026-03-09"}))
    load_partition(conn, landing, DAY)
    reason, detail = conn.execute("select reason, detail from quarantine").fetchall()[0]
    assert reason == "missing_user_id"
    assert detail.startswith("no user id (user_id, distinct_id, userId, anonymous_id")


def test_segment_calls_without_an_event_load_as_the_events_named_for_them(conn, landing) -> None:
    common = {"anonymousId": "d1", "timestamp": "2026-03-09T10:00:00Z"}
    land(
        landing,
        "segment.jsonl",
        jsonl(
            {**common, "type": "page", "name": "Pricing", "messageId": "m1"},
            {**common, "type": "identify", "userId": "u1", "traits": {}, "messageId": "m2"},
            {**common, "type": "track", "event": "signup", "userId": "u1", "messageId": "m3"},
        ),
    )
    load_partition(conn, landing, DAY)
    rows = conn.execute("select event_id, event, user_id from events order by 1").fetchall()
    assert rows == [("m1", "$pageview", "u1"), ("m2", "$identify", "u1"), ("m3", "signup", "u1")]


def test_mixpanel_identify_links_its_anonymous_id_and_merge_stays_an_event(conn, landing) -> None:
    def mixpanel(event: str, insert_id: str, **properties: object) -> dict:
        return {
            "event": event,
            "properties": {"time": 1773050400, "$insert_id": insert_id, **properties},
        }

    land(
        landing,
        "mixpanel.json",
        jsonl(
            mixpanel("page_view", "i1", distinct_id="$device:d1"),
            mixpanel(
                "$identify",
                "i2",
                distinct_id="u1",
                **{"$identified_id": "u1", "$anon_id": "$device:d1"},
            ),
            mixpanel("$merge", "i3", distinct_id="u1", **{"$distinct_ids": ["$device:d2", "u1"]}),
        ),
    )
    load_partition(conn, landing, DAY)
    rows = conn.execute("select event_id, user_id, distinct_id from events order by 1").fetchall()
    assert rows == [("i1", "u1", "$device:d1"), ("i2", "u1", "u1"), ("i3", "u1", "u1")]
    assert conn.execute("select anonymous_id, user_id from identities").fetchall() == [("d1", "u1")]


def test_the_cdnow_purchase_log_loads_as_it_is_and_gives_its_monthly_cohorts(
    conn: duckdb.DuckDBPyConnection, landing: Path
) -> None:
    land(landing, "cdnow_events.csv", CDNOW.read_text())
    settings = parse_settings(
        {"aliases": {"timestamp": ["event_date"], "revenue": ["dollar_value"]}}, home=Path(".")
    )
    result = load_partition(conn, landing, DAY, settings.aliases)
    assert result.records == 69_659
    build_sessions(conn, settings)
    build_users(conn, settings)
    build_cohorts(conn)
    cohorts = conn.execute(
        "select cohort_start, cohort_users from cohorts where cohort_granularity = 'month' "
        "and dimension = 'all' and period_index = 0 order by 1"
    ).fetchall()
    # The benchmark's README: every customer first bought in January-March 1997.
    assert cohorts == [
        (dt.date(1997, 1, 1), 7_846),
        (dt.date(1997, 2, 1), 8_476),
        (dt.date(1997, 3, 1), 7_248),
    ]


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        ({"userid": ["uid"]}, "aliases has unknown field 'userid'"),
        ({"timestamp": []}, "aliases.timestamp must be a list of source names"),
        ({"timestamp": ["a..b"]}, "aliases.timestamp has 'a..b'"),
        ({"properties": ["properties.inner"]}, "aliases.properties 'properties.inner'"),
    ],
)
def test_aliases_are_validated_with_one_sentence(aliases: dict, message: str) -> None:
    with pytest.raises(EventpulseError, match=message.replace(".", r"\.")):
        parse_settings({"aliases": aliases}, home=Path("."))


def test_a_single_alias_name_may_be_written_without_a_list() -> None:
    settings = parse_settings({"aliases": {"revenue": "dollar_value"}}, home=Path("."))
    assert settings.aliases == {"revenue": ("dollar_value",)}
    assert isinstance(settings, Settings)


def test_every_aliasable_field_has_its_sources_and_configured_names_come_first() -> None:
    lists = source_lists({"user_id": ["uid"]})
    assert [name for name, _ in lists["user_id"]][:2] == ["uid", "user_id"]
    assert [name for name, _ in lists["sent_id"]][0] == "uid"
    assert json_path('a."b') == '$."a"."\\"b"'


def test_each_group_of_sources_fits_the_slots_of_the_macro_that_reads_it() -> None:
    """parse_records.sql reads each group with a macro of a fixed number of slots: a source
    beyond them would silently never be read."""
    text = (
        Path(__file__).resolve().parents[2] / "sql" / "staging" / "parse_records.sql"
    ).read_text()
    body = text[text.index("create or replace temp macro field_value(") :]
    body = body[: body.index(");")]
    # The configured groups' macros are written per load, sized to the configuration: with the
    # most names a configuration may give a field, in every configured group, they have
    # MAX_SOURCES slots (each slot is one `positions[i]`, written once or, JSON null's test,
    # twice).
    names = [f"c{i}" for i in range(MAX_SOURCES)]
    fullest = source_paths(
        {
            "user_id": names,
            "timestamp": [f"{n}.x" for n in names],
            "channel": [f"properties.{n}" for n in names],
        }
    )
    sized = fullest.configured_macros()
    for group, slots in GROUP_SLOTS.items():
        macro = re.search(rf"(\w+)\(\w+, s\.{group}\)", body).group(1)
        if macro in CONFIGURED_MACROS:
            definition = sized[sized.index(f"create or replace temp macro {macro}(") :]
        else:
            definition = text[text.index(f"create or replace temp macro {macro}(") :]
        definition = definition[: definition.index(");")]
        found = set(re.findall(r"positions\[(\d+)\]", definition))
        assert found == {str(i) for i in range(1, slots + 1)}, group
        assert all(len(fullest.positions[f][group]) <= slots for f in fullest.positions), group
    with pytest.raises(EventpulseError, match="at most 12"):
        source_paths({"user_id": [*names, "one_more"]})


def test_the_last_of_the_most_configured_names_is_read_and_fewer_names_still_are(
    conn, landing
) -> None:
    """The configured groups' macros have only the slots a configuration fills: the twelfth
    name of a field is read (top-level, dotted, in the properties), and so is the second name
    when no field has more."""
    names = [f"c{i}" for i in range(MAX_SOURCES)]
    land(
        landing,
        "a.jsonl",
        jsonl(
            {
                "c11": "u1",
                "n": {"c11": "2026-03-10T08:00:00Z"},
                "event": "e",
                "properties": {"c11": "web"},
            }
        ),
    )
    aliases = {
        "user_id": names,
        "timestamp": [f"n.{n}" for n in names],
        "channel": [f"properties.{n}" for n in names],
    }
    load_partition(conn, landing, DAY, aliases)
    row = conn.execute("select user_id, ts, channel from events").fetchall()
    assert row == [("u1", dt.datetime(2026, 3, 10, 8), "web")]
    land(landing, "a.jsonl", jsonl({"b": "u2", "event": "e", "n": {"b": "2026-03-10T09:00:00Z"}}))
    load_partition(conn, landing, DAY, {"user_id": ["a", "b"], "timestamp": ["n.a", "n.b"]})
    assert conn.execute("select user_id, ts from events").fetchall() == [
        ("u2", dt.datetime(2026, 3, 10, 9))
    ]
