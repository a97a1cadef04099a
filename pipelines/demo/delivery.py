"""How the simulated events land: each record's arrival day (some late), re-sent copies, bad
records of every CONTRACT §2 quarantine reason, and the file style (SDK, format, aliases, time
form) it is written in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.demo.plan import Calendar
from pipelines.demo.shop import (
    BAD_RECORD_RATE,
    DAY_US,
    DUPLICATE_RATE,
    LATE_RATE,
    MIN_BAD_PER_KIND,
    PURCHASE,
    RESTAMPED_COPY_RATE,
    VARIANTS,
)


@dataclass(frozen=True)
class FileStyle:
    """How one SDK or export writes its files: format, field aliases and time form."""

    name: str
    ext: str
    user_key: str
    event_key: str
    time_key: str
    id_key: str | None
    time_form: str  # iso_z | iso_offset | naive | epoch_s | epoch_ms
    platform_key: str = "platform"
    channel_key: str = "channel"
    campaign_key: str = "campaign"
    revenue_key: str = "revenue"
    typed: bool = False  # Parquet with numeric time and revenue columns

    @property
    def json_lines(self) -> bool:
        return self.ext.removesuffix(".gz") in (".jsonl", ".ndjson", ".json")

    def accepts(self, defect: str) -> bool:
        """Whether a record with this defect can be written in this style at all."""
        if defect in ("malformed_record", "invalid_type", "oversized_record"):
            return self.json_lines
        if defect in ("invalid_timestamp", "invalid_revenue"):
            return not self.typed
        return True


# Each consecutive block of four (one arrival day's files) holds a JSON-lines style, so every
# kind of bad record has somewhere to go every day. Together they use every alias of CONTRACT §2.
STYLES = (
    FileStyle("web-sdk", ".jsonl", "user_id", "event", "timestamp", "event_id", "iso_z"),
    FileStyle(
        "backend", ".csv", "user_id", "event_name", "event_time", "uuid", "iso_offset",
        campaign_key="utm_campaign",
    ),
    FileStyle("warehouse", ".parquet", "user_id", "event", "ts", "event_id", "epoch_ms", typed=True),
    FileStyle(
        "mixpanel", ".json", "distinct_id", "event", "time", "$insert_id", "epoch_s",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
        revenue_key="$revenue",
    ),
    FileStyle(
        "segment", ".ndjson", "userId", "event", "originalTimestamp", "messageId", "iso_offset",
        channel_key="utm_source", campaign_key="utm_campaign",
    ),
    FileStyle(
        "crm-export", ".csv.gz", "distinct_id", "event_type", "timestamp", None, "iso_z",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
        revenue_key="$revenue",
    ),
    FileStyle(
        "amplitude", ".jsonl.gz", "user_id", "event_type", "time", "insert_id", "epoch_ms",
        revenue_key="$revenue",
    ),
    FileStyle(
        "lake", ".parquet", "userId", "name", "event_time", "insert_id", "naive",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
    ),
    FileStyle(
        "rudderstack", ".ndjson.gz", "anonymousId", "name", "ts", "messageId", "naive",
        campaign_key="utm_campaign",
    ),
    FileStyle("kiosk", ".csv", "anonymousId", "event", "time", None, "naive"),
    FileStyle(
        "pos", ".jsonl", "anonymous_id", "event_name", "time", None, "epoch_ms",
        platform_key="$os",
    ),
    FileStyle("legacy", ".json.gz", "distinct_id", "name", "event_time", None, "iso_z"),
)  # fmt: skip
STYLES_PER_DAY = 4
BAD_KINDS = (
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
RECORD_COLUMNS = (
    "id_index",  # row of the record's event id in the id table: copies share their original's
    "user",
    "code",
    "ts_us",
    "platform",
    "channel",
    "campaign",
    "country",
    "revenue",
    "page",
    "item",
    "query",
    "arrival",
    "style",
    "order_us",
    "defect",
    "variant",
)


@dataclass(frozen=True)
class Delivery:
    bad_records: dict[str, int]
    duplicates: int
    late_records: int


def day_styles(days: int) -> np.ndarray:
    """The styles (indexes into STYLES) that write a file on each arrival day: [days, 4]. The
    rotation repeats every len(STYLES) / STYLES_PER_DAY = 3 days."""
    return (np.arange(days)[:, None] * STYLES_PER_DAY + np.arange(STYLES_PER_DAY)) % len(STYLES)


def deliver(
    rng: np.random.Generator, calendar: Calendar, events: pl.DataFrame
) -> tuple[pl.DataFrame, Delivery]:
    """Every record as it lands: clean events (some late), re-sent copies and bad records, each
    with its arrival day, file style and position in the file (order_us), sorted by file."""
    styles = day_styles(calendar.days)
    clean = _arrivals(rng, calendar, events, styles)
    copies = _resent_copies(rng, calendar, clean)
    bad, bad_counts = _bad_records(rng, calendar, clean, styles)
    records = pl.concat(
        [frame.select(RECORD_COLUMNS) for frame in (clean, copies, bad)],
        how="vertical_relaxed",
        rechunk=True,  # a gather over many chunks is several times slower
    )
    order = np.lexsort([records[c].to_numpy() for c in ("order_us", "arrival", "style")])
    records = records[order]
    # ids are made last, for the sorted rows only: strings are the expensive part to move
    id_bytes = np.frombuffer(rng.bytes(16 * (clean.height + bad.height)), dtype=np.uint8)
    event_id = _uuids(id_bytes.reshape(-1, 16)[records["id_index"].to_numpy()])
    records = records.with_columns(event_id=event_id)
    late = int((clean["arrival"] > clean["day"]).sum())
    return records, Delivery(bad_counts, copies.height, late)


def _arrivals(
    rng: np.random.Generator, calendar: Calendar, events: pl.DataFrame, styles: np.ndarray
) -> pl.DataFrame:
    """Arrival day (late sessions land 1–2 days later, never after the last day) and file."""
    n = events.height
    session = events["session"].to_numpy()
    sessions = int(session.max()) + 1 if n else 0
    session_platform = np.zeros(sessions, dtype=np.int64)
    session_platform[session] = events["platform"].to_numpy()
    late_session = rng.random(sessions) < LATE_RATE[session_platform]
    delay = np.where(late_session, 1 + (rng.random(sessions) < 0.3), 0)[session]
    day = events["day"].to_numpy()
    arrival = np.minimum(day + delay, calendar.days - 1)
    # late uploads sit among that day's records, not at its start
    uploaded_us = calendar.start_us(arrival) + rng.integers(0, DAY_US, size=n)
    return events.with_columns(
        id_index=pl.Series(np.arange(n)),
        arrival=pl.Series(arrival),
        style=pl.Series(styles[arrival, rng.integers(0, STYLES_PER_DAY, size=n)]),
        order_us=pl.Series(np.where(arrival > day, uploaded_us, events["ts_us"].to_numpy())),
        defect=pl.lit(None, dtype=pl.String),
        variant=pl.Series(rng.integers(0, VARIANTS, size=n)),
    )


def _resent_copies(
    rng: np.random.Generator, calendar: Calendar, clean: pl.DataFrame
) -> pl.DataFrame:
    """~1% of records sent again by the same SDK: later in the same file, or in that SDK's next
    file three days later (its next turn in the rotation). Some SDKs re-stamp the time of a
    retry but keep its event id."""
    copies = clean.filter(pl.Series(rng.random(clean.height) < DUPLICATE_RATE))
    n = copies.height
    first_arrival = copies["arrival"].to_numpy()
    next_file = first_arrival + len(STYLES) // STYLES_PER_DAY
    later = (rng.random(n) < 0.4) & (next_file < calendar.days)
    arrival = np.where(later, next_file, first_arrival)
    order_us = np.where(
        later,
        calendar.start_us(arrival) + rng.integers(0, DAY_US, size=n),
        copies["order_us"].to_numpy() + rng.integers(1_000_000, 3_600 * 1_000_000, size=n),
    )
    has_id = np.array([s.id_key is not None for s in STYLES])[copies["style"].to_numpy()]
    restamp = has_id & (rng.random(n) < RESTAMPED_COPY_RATE)
    shift_us = np.where(restamp, rng.integers(1, 6, size=n) * 1_000_000, 0)
    return copies.with_columns(
        arrival=pl.Series(arrival),
        order_us=pl.Series(order_us),
        ts_us=pl.col("ts_us") + pl.Series(shift_us),
    )


def _bad_records(
    rng: np.random.Generator, calendar: Calendar, clean: pl.DataFrame, styles: np.ndarray
) -> tuple[pl.DataFrame, dict[str, int]]:
    """~0.2% bad records, at least a few of every kind, each in a file style that can hold it;
    their content is borrowed from real events, with a fresh id."""
    per_kind = max(MIN_BAD_PER_KIND, round(BAD_RECORD_RATE * clean.height / len(BAD_KINDS)))
    counts = {kind: per_kind for kind in BAD_KINDS}
    counts["oversized_record"] = 1 if clean.height < 100_000 else 2
    files = [(day, int(style)) for day in range(calendar.days) for style in styles[day]]
    frames = []
    next_id = clean.height
    for kind, count in counts.items():
        homes = [f for f in files if STYLES[f[1]].accepts(kind)]
        home = np.array(homes)[rng.integers(0, len(homes), size=count)]
        in_day_us = calendar.start_us(home[:, 0]) + rng.integers(0, DAY_US, size=count)
        future_us = in_day_us + rng.integers(3, 8, size=count) * DAY_US
        donor = clean[rng.integers(0, clean.height, size=count)]
        frame = donor.with_columns(
            id_index=pl.Series(np.arange(next_id, next_id + count)),
            arrival=pl.Series(home[:, 0]),
            style=pl.Series(home[:, 1]),
            ts_us=pl.Series(future_us if kind == "future_timestamp" else in_day_us),
            order_us=pl.Series(in_day_us),
            defect=pl.lit(kind),
            # consecutive variants: every flavour of the defect shows up (see VARIANTS)
            variant=pl.Series((rng.integers(0, VARIANTS) + np.arange(count)) % VARIANTS),
        )
        if kind == "invalid_revenue":
            frame = frame.with_columns(code=pl.lit(PURCHASE, dtype=frame["code"].dtype))
        frames.append(frame)
        next_id += count
    return pl.concat(frames, how="vertical_relaxed"), counts


def _uuids(random_bytes: np.ndarray) -> pl.Series:
    """Version-4 UUID strings from 16 random bytes a row, built as one buffer (no Python loop)."""
    n = len(random_bytes)
    random_bytes = random_bytes.copy()
    random_bytes[:, 6] = 0x40 | (random_bytes[:, 6] & 0x0F)  # version 4
    random_bytes[:, 8] = 0x80 | (random_bytes[:, 8] & 0x3F)  # RFC 4122 variant
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    pair = np.arange(256)
    # byte → its two hex characters, as one little-endian uint16
    table = (hex_digits[pair >> 4] | (hex_digits[pair & 15].astype(np.uint16) << 8)).astype(
        np.uint16
    )
    hex_text = table[random_bytes].view(np.uint8)  # [n, 32]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    # 8-4-4-4-12 hex digits: group i moves right by the i dashes before it
    for dashes, (start, stop) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        text[:, start + dashes : stop + dashes] = hex_text[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    return pl.Series("event_id", pl.from_arrow(strings), dtype=pl.String)
