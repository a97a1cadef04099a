"""Demo generator (issue 2, item 4): deterministic files in every format, alias, time form and
kind of bad record, plus honest anomaly labels and a changelog that explains them.

The landing zone is read back here by a small, independent pure-Python reader that follows
CONTRACT §2, so the summary's counts are checked against the files, not against themselves.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines.demo import GenerateSummary, generate, plan_anomalies, shop
from pipelines.demo.files import _time_columns, _time_text
from pipelines.demo.labels import honest_labels
from pipelines.demo.plan import Anomaly, Calendar
from pipelines.errors import EventpulseError
from pipelines.settings import METRIC_NAMES

END = dt.date(2026, 6, 30)
SMALL = {"days": 30, "users": 300, "end": END}

USER_KEYS = ("user_id", "distinct_id", "userId", "anonymous_id", "anonymousId")
EVENT_KEYS = ("event", "event_type", "event_name", "name")
TIME_KEYS = ("timestamp", "time", "ts", "event_time", "originalTimestamp")
ID_KEYS = ("event_id", "uuid", "messageId", "insert_id", "$insert_id")
FIELD_KEYS = USER_KEYS + EVENT_KEYS + TIME_KEYS
PROPERTY_COLUMNS = ("platform", "channel", "utm_source", "utm_campaign", "$os", "revenue")
PROPERTY_COLUMNS += ("$revenue", "country")
REASONS = (
    "malformed_record",
    "missing_user_id",
    "missing_event",
    "missing_timestamp",
    "invalid_timestamp",
    "future_timestamp",
    "invalid_revenue",
    "invalid_type",
    "oversized_record",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, seed=7, **SMALL)


@pytest.fixture(scope="module")
def landing(demo: tuple[Path, GenerateSummary]) -> Landing:
    out, _ = demo
    return read_landing(out / "landing" / "events")


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- Determinism and counts ---------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(
    demo: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    out, _ = demo
    generate(tmp_path, seed=7, **SMALL)
    assert file_bytes(tmp_path) == file_bytes(out)


def test_another_seed_writes_other_events(
    demo: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    out, _ = demo
    generate(tmp_path, seed=8, **SMALL)
    assert file_bytes(tmp_path / "landing") != file_bytes(out / "landing")


def test_folders_are_arrival_days_covering_the_period(
    demo: tuple[Path, GenerateSummary],
) -> None:
    out, summary = demo
    folders = sorted(p.name for p in (out / "landing" / "events").iterdir())
    expected = [f"date={END - dt.timedelta(days=n)}" for n in range(SMALL["days"])]
    assert folders == sorted(expected)
    assert (summary.first_date, summary.last_date) == (END - dt.timedelta(days=29), END)


def test_summary_counts_match_what_the_files_hold(
    demo: tuple[Path, GenerateSummary], landing: Landing
) -> None:
    _, summary = demo
    assert landing.records == summary.records
    assert len(landing.events) == summary.events
    assert landing.reasons == Counter(
        {**summary.bad_records, "duplicate_event_id": summary.duplicates}
    )
    assert summary.records == summary.events + sum(summary.bad_records.values()) + (
        summary.duplicates
    )
    assert summary.files == sum(1 for p in (demo[0] / "landing").rglob("*") if p.is_file())
    assert summary.events_per_second > 0


# --- Formats, aliases, time forms ---------------------------------------------------------------


def test_files_come_in_every_supported_format(demo: tuple[Path, GenerateSummary]) -> None:
    out, _ = demo
    names = [p.name for p in (out / "landing" / "events").rglob("*.*")]
    extensions = {name.split(".", 1)[1] for name in names}
    assert {"jsonl", "ndjson", "json", "csv", "parquet", "jsonl.gz", "csv.gz"} <= extensions
    assert {"ndjson.gz", "json.gz"} <= extensions


def test_files_use_every_alias_and_one_style_each(demo: tuple[Path, GenerateSummary]) -> None:
    out, _ = demo
    keys: set[str] = set()
    property_keys: set[str] = set()
    styles_without_id = 0
    for path in (out / "landing" / "events").rglob("*.*"):
        rows = [row for _, row, reason in rows_of(path) if reason is None]
        keys |= {k for row in rows for k in row}
        property_keys |= {
            k for row in rows if isinstance(row.get("properties"), dict) for k in row["properties"]
        }
        if not any(k in ID_KEYS for row in rows for k in row):
            styles_without_id += 1
        # one alias style per file: every complete record uses the same user, event, time keys
        aliases = {frozenset(k for k in row if k in FIELD_KEYS) for row in rows}
        assert len({a for a in aliases if len(a) == 3}) == 1, path.name
    assert set(USER_KEYS + EVENT_KEYS + TIME_KEYS + ID_KEYS) <= keys
    assert set(PROPERTY_COLUMNS) <= keys  # CSV/Parquet: properties as top-level columns
    assert {"platform", "$os", "channel", "utm_source", "utm_campaign", "$revenue"} <= property_keys
    assert styles_without_id > 0


def test_every_time_form_is_present(demo: tuple[Path, GenerateSummary]) -> None:
    out, _ = demo
    values = [
        value
        for path in (out / "landing" / "events").rglob("*.*")
        for _, row, reason in rows_of(path)
        if reason is None
        for key, value in row.items()
        if key in TIME_KEYS and value is not None
    ]
    texts = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, int)]
    assert any(re.fullmatch(r"[\d\-T:.]+Z", v) for v in texts)
    assert {m for v in texts for m in re.findall(r"[+-]\d\d:\d\d$", v)} >= {"+02:00", "-05:00"}
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+", v) for v in texts)  # naive
    assert any(1e9 < n < 1e10 for n in numbers) and any(1e12 < n < 1e13 for n in numbers)
    fractions = {len(m) for v in texts for m in re.findall(r"\.(\d+)", v)}
    whole_seconds = r"T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?$"
    assert {3, 6} <= fractions and any(re.search(whole_seconds, v) for v in texts)


@pytest.mark.parametrize("form", ["iso_z", "iso_offset", "naive", "epoch_s", "epoch_ms"])
def test_every_time_form_writes_the_same_utc_instant(form: str) -> None:
    ts_us = 1_781_000_000_123_456  # 2026-06-09T10:13:20.123456Z
    records = pl.DataFrame({"ts_us": [ts_us] * shop.VARIANTS, "variant": range(60)})
    records = records.with_columns(**_time_columns(records["variant"]))
    exact = dt.datetime(2026, 6, 9, 10, 13, 20, 123456)
    for text in records.select(_time_text(form)).to_series():
        parsed = parse_time(int(text) if form.startswith("epoch") else text)
        assert isinstance(parsed, dt.datetime)
        assert dt.timedelta(0) <= exact - parsed < dt.timedelta(seconds=1), text


# --- The shop ------------------------------------------------------------------------------------


def test_events_follow_the_funnel_with_revenue_on_purchases(landing: Landing) -> None:
    users: dict[str, set[Any]] = {}
    for e in landing.events:
        users.setdefault(e.event, set()).add(e.user)
    funnel = [users[step] for step in ("page_view", "signup", "add_to_cart", "purchase")]
    assert all(later and later < earlier for earlier, later in pairwise(funnel))
    assert users["search"] and users["view_item"]
    revenues = [e.revenue for e in landing.events if e.event == "purchase"]
    assert all(r is not None and r > 0 for r in revenues)
    assert 20 <= float(np.median(revenues)) <= 200
    assert all(e.revenue is None for e in landing.events if e.event != "purchase")


def test_users_return_on_later_days_and_sometimes_on_another_platform(landing: Landing) -> None:
    days: dict[Any, set[dt.date]] = {}
    platforms: dict[Any, set[str | None]] = {}
    for e in landing.events:
        days.setdefault(e.user, set()).add(e.ts.date())
        platforms.setdefault(e.user, set()).add(e.platform)
    assert sum(len(d) > 1 for d in days.values()) > len(days) / 4
    assert any(len(p) > 1 for p in platforms.values())
    assert {p for ps in platforms.values() for p in ps} == set(shop.PLATFORMS)


# --- Late, duplicate and bad records ------------------------------------------------------------


def test_late_arrivals_land_one_or_two_days_later(
    demo: tuple[Path, GenerateSummary], landing: Landing
) -> None:
    _, summary = demo
    delays = Counter((e.arrival - e.ts.date()).days for e in landing.events)
    assert set(delays) == {0, 1, 2}
    assert delays[1] + delays[2] == summary.late_records > 0


def test_every_kind_of_bad_record_is_present(
    demo: tuple[Path, GenerateSummary], landing: Landing
) -> None:
    _, summary = demo
    assert set(summary.bad_records) == set(REASONS)
    assert all(landing.reasons[r] >= 4 for r in REASONS if r != "oversized_record")
    assert landing.reasons["oversized_record"] >= 1
    assert landing.reasons["duplicate_event_id"] == summary.duplicates > 0


def test_bad_values_look_like_real_mistakes(demo: tuple[Path, GenerateSummary]) -> None:
    out, _ = demo
    text = "".join(
        json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False)
        if path.name.endswith(".parquet")
        else _decoded(path)
        for path in (out / "landing" / "events").rglob("*.*")
    )
    samples = ("not-a-date", "2026-13-45", "2026-02-30T25:61:00Z", '"free"', "12,5€")
    samples += ('"properties":[1,2]', '"properties":"not an object"', '{"id":"u0', '["')
    for sample in samples:
        assert sample in text, sample


def test_resent_copies_are_identical_or_keep_their_event_id(landing: Landing) -> None:
    assert landing.copies
    for copy, kept in landing.copies:
        assert copy.key == kept.key
        assert (copy.arrival, copy.source) >= (kept.arrival, kept.source)


# --- Labels and changelog -----------------------------------------------------------------------


def test_labels_file_lists_dated_segment_metrics(demo: tuple[Path, GenerateSummary]) -> None:
    out, summary = demo
    labels = json.loads((out / "demo_labels.json").read_text())
    segments = {
        "all": {"all"},
        "platform": set(shop.PLATFORMS),
        "channel": set(shop.CHANNELS),
    }
    assert labels and len(labels) == summary.labels
    for label in labels:
        assert set(label) == {"date", "dimension", "segment", "metric", "kind"}
        assert label["segment"] in segments[label["dimension"]]
        assert label["metric"] in METRIC_NAMES
        assert label["kind"] in shop.ANOMALY_KINDS
        date = dt.date.fromisoformat(label["date"])
        assert summary.first_date + dt.timedelta(days=SMALL["days"] // 2) <= date <= END
    assert len({tuple(label.values()) for label in labels}) == len(labels)


def test_changelog_explains_every_labelled_date(demo: tuple[Path, GenerateSummary]) -> None:
    out, _ = demo
    changelog = (out / "docs" / "changelog.md").read_text()
    labels = json.loads((out / "demo_labels.json").read_text())
    headings = re.findall(r"^## (\d{4}-\d\d-\d\d)", changelog, flags=re.MULTILINE)
    assert len(headings) >= 5 and headings == sorted(headings, reverse=True)
    for label in labels:
        assert label["date"] in changelog
    assert "Incident" in changelog and "release" in changelog


def test_a_last_day_anomaly_after_anomalies_on_its_weekday_is_still_labelled() -> None:
    """The crash on day 86 of 90: its same weekdays a week and two weeks before (79, 72) are
    anomalies and none follows, so the clean same weekdays within three weeks are one (65);
    the labeller looks further out (58) instead of leaving a real incident unlabelled."""
    days, crash = 90, 86
    grid = np.random.default_rng(3).poisson(100.0, (days, len(METRIC_NAMES))).astype(float)
    grid[:, METRIC_NAMES.index("conversion_rate")] = 0.05
    metrics = {segment: grid.copy() for segment in shop.SEGMENTS}
    ios = metrics[("platform", "ios")]
    ios[crash, [METRIC_NAMES.index(m) for m in ("active_users", "sessions", "events")]] = 40.0
    anomalies = [Anomaly("outage", (72,)), Anomaly("revenue_spike", (79,)), Anomaly("crash", (86,))]
    labels = honest_labels(Calendar(dt.date(2026, 1, 1), days), metrics, anomalies)
    crash_date = str(dt.date(2026, 1, 1) + dt.timedelta(days=crash))
    crashed = {(lb["segment"], lb["metric"]) for lb in labels if lb["date"] == crash_date}
    assert crashed >= {("ios", "active_users"), ("ios", "sessions"), ("ios", "events")}


def test_anomalies_leave_three_weeks_of_history_at_the_default_length() -> None:
    for seed in range(10):
        plan = plan_anomalies(np.random.default_rng(seed), 90)
        days = sorted(d for anomaly in plan for d in anomaly.days)
        assert {a.kind for a in plan} == set(shop.ANOMALY_KINDS)
        assert days[0] >= 30 and days[-1] <= 87  # the last 60 days, not the last two
        assert len(set(days)) == len(days) == 6


def test_rerun_replaces_the_previous_demos_files(tmp_path: Path) -> None:
    generate(tmp_path, days=6, users=50, end=END - dt.timedelta(days=10))
    generate(tmp_path, days=6, users=50, end=END)
    folders = sorted(p.name for p in (tmp_path / "landing" / "events").iterdir())
    assert folders == [f"date={END - dt.timedelta(days=n)}" for n in range(5, -1, -1)]


def test_demo_refuses_a_home_with_the_users_landing_file_and_writes_nothing(
    tmp_path: Path,
) -> None:
    generate(tmp_path, days=6, users=50, end=END - dt.timedelta(days=10))
    before = file_bytes(tmp_path)
    own = tmp_path / "landing" / "events" / f"date={END}" / "my-export.jsonl"
    own.parent.mkdir(parents=True)
    own.write_text('{"user_id":"x","event":"page_view","timestamp":"2026-06-30T10:00:00Z"}\n')
    with pytest.raises(EventpulseError, match="my-export.jsonl.*nothing was written"):
        generate(tmp_path, days=6, users=50, end=END)
    own.unlink()
    assert file_bytes(tmp_path) == before


def test_users_changelog_survives_the_demo(tmp_path: Path) -> None:
    changelog = tmp_path / "docs" / "changelog.md"
    changelog.parent.mkdir(parents=True)
    changelog.write_text("# Our releases\n\n- 2026-06-01: new checkout\n")
    with pytest.raises(EventpulseError, match="docs/changelog.md"):
        generate(tmp_path, days=6, users=50, end=END)
    assert changelog.read_text() == "# Our releases\n\n- 2026-06-01: new checkout\n"
    assert not (tmp_path / "landing").exists()
    # An edit to the demo's own changelog makes it the user's too.
    generate(tmp_path / "fresh", days=6, users=50, end=END)
    with (tmp_path / "fresh" / "docs" / "changelog.md").open("a") as edited:
        edited.write("\nOur note.\n")
    with pytest.raises(EventpulseError, match="changelog.md"):
        generate(tmp_path / "fresh", days=6, users=50, end=END)


# --- An independent reader of the landing zone (CONTRACT §2) ------------------------------------


@dataclass
class Event:
    key: str
    user: Any
    event: Any
    ts: dt.datetime
    arrival: dt.date
    source: str
    platform: str | None
    revenue: float | None


@dataclass
class Landing:
    records: int
    reasons: Counter[str]
    events: list[Event]
    copies: list[tuple[Event, Event]]  # (re-sent copy, the copy that is kept)


def read_landing(folder: Path) -> Landing:
    reasons: Counter[str] = Counter()
    kept: dict[str, Event] = {}
    copies = []
    records = 0
    for day_folder in sorted(folder.iterdir()):
        arrival = dt.date.fromisoformat(day_folder.name.removeprefix("date="))
        for path in sorted(day_folder.iterdir()):
            for _, row, reason in rows_of(path):
                records += 1
                event = None
                if reason is None:
                    reason, event = classify(row, arrival, path.name)
                if event is not None and event.key in kept:
                    reason = "duplicate_event_id"
                    copies.append((event, kept[event.key]))
                elif event is not None:
                    kept[event.key] = event
                if reason:
                    reasons[reason] += 1
    return Landing(records, reasons, list(kept.values()), copies)


def _decoded(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()


def rows_of(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line or row number, record, reason it is unreadable) for each record of a file."""
    if path.name.endswith(".parquet"):
        yield from ((n, row, None) for n, row in enumerate(pq.read_table(path).to_pylist(), 1))
        return
    text = _decoded(path)
    if ".csv" in path.name:
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), 1):
            yield n, {k: (v if v != "" else None) for k, v in row.items()}, None
        return
    assert text.endswith("\n")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if len(line.encode()) > 1024 * 1024:
            yield n, None, "oversized_record"
            continue
        try:
            record = json.loads(line)
        except ValueError:
            yield n, None, "malformed_record"
            continue
        yield n, record, None


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if k in row), None)


def parse_time(value: Any) -> dt.datetime | None:
    """UTC, naive; None when unparseable."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def classify(row: dict[str, Any], arrival: dt.date, source: str) -> tuple[str | None, Event | None]:
    reserved = set(USER_KEYS + EVENT_KEYS + TIME_KEYS + ID_KEYS)
    user, event, ts = _first(row, USER_KEYS), _first(row, EVENT_KEYS), _first(row, TIME_KEYS)
    properties = row.get("properties", {k: v for k, v in row.items() if k not in reserved})
    if isinstance(user, dict | list) or isinstance(event, dict | list):
        return "invalid_type", None
    if not isinstance(properties, dict):
        return "invalid_type", None
    if user is None:
        return "missing_user_id", None
    if event is None:
        return "missing_event", None
    if ts is None:
        return "missing_timestamp", None
    parsed = parse_time(ts)
    if parsed is None:
        return "invalid_timestamp", None
    if parsed > dt.datetime.combine(arrival, dt.time()) + dt.timedelta(days=2):
        return "future_timestamp", None
    revenue = properties.get("revenue", properties.get("$revenue"))
    try:
        revenue = None if revenue is None else float(revenue)
    except ValueError:
        return "invalid_revenue", None
    key = _first(row, ID_KEYS) or json.dumps([user, event, str(parsed), properties], default=str)
    platform = properties.get("platform", properties.get("$os"))
    return None, Event(key, user, event, parsed, arrival, source, platform, revenue)
