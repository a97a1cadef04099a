"""Writing the landing zone: one file per arrival day and file style, rendered as JSON lines,
CSV or Parquet in that style's aliases and time form (bad records with their defect), plus the
labels file."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.demo.delivery import STYLES, FileStyle
from pipelines.demo.plan import Calendar
from pipelines.demo.shop import (
    BAD_REVENUES,
    BAD_TIMESTAMPS,
    CAMPAIGNS,
    CHANNELS,
    COUNTRIES,
    EVENT_NAMES,
    GARBAGE_LINES,
    GZIP_LEVEL,
    NULL,
    OFFSETS,
    OVERSIZED_BYTES,
    OVERSIZED_MARK,
    PAGES,
    PLATFORMS,
    QUERIES,
)


def write_landing(out: Path, calendar: Calendar, records: pl.DataFrame) -> int:
    """Write every (arrival day, style) file; `records` are sorted by style, arrival day and
    position. Returns the number of files."""
    landing = out / "landing" / "events"
    _remove_previous_demo_files(landing)
    records = _with_text_columns(records)
    style = records["style"].to_numpy()
    starts = np.flatnonzero(np.diff(style, prepend=-1))
    files = 0
    for start, stop in zip(starts, [*starts[1:], len(style)], strict=True):
        rows = records.slice(start, stop - start)
        files += _write_style_files(landing, calendar, STYLES[style[start]], rows)
    return files


def _write_style_files(
    landing: Path, calendar: Calendar, style: FileStyle, rows: pl.DataFrame
) -> int:
    """One file per arrival day of this style's rows (sorted by arrival day)."""
    rendered = _render(style, rows)
    arrival = rows["arrival"].to_numpy()
    starts = np.flatnonzero(np.diff(arrival, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(arrival)], strict=True):
        date = calendar.date(arrival[start])
        folder = landing / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{style.name}-{date:%Y%m%d}{style.ext}"
        _write_file(path, style, rendered.slice(start, stop - start))
    return len(starts)


def _remove_previous_demo_files(landing: Path) -> None:
    """Demo files of an earlier run would mix with this one; anything else is left alone."""
    if not landing.exists():
        return
    for folder in landing.glob("date=*"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if any(_is_demo_file(path.name, style) for style in STYLES):
                path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def is_demo_file_name(name: str) -> bool:
    """Whether a landing file's name is one the demo gives its files."""
    return any(_is_demo_file(name, style) for style in STYLES)


def _is_demo_file(name: str, style: FileStyle) -> bool:
    stamp = name.removeprefix(f"{style.name}-").removesuffix(style.ext)
    return name.startswith(f"{style.name}-") and name.endswith(style.ext) and stamp.isdigit()


def _with_text_columns(records: pl.DataFrame) -> pl.DataFrame:
    """Codes to the strings a file holds, and each record's time precision and UTC offset."""
    return records.with_columns(
        **_time_columns(records["variant"]),
        user_id=_numbered("u", 6, records["user"]),
        event=_decode(records["code"], EVENT_NAMES),
        platform=_decode(records["platform"], PLATFORMS),
        channel=_decode(records["channel"], CHANNELS),
        campaign=_decode(records["campaign"], CAMPAIGNS),
        country=_decode(records["country"], COUNTRIES),
        page=_decode(records["page"], PAGES),
        item_id=_numbered("sku-", 4, records["item"]),
        query=_decode(records["query"], QUERIES),
        revenue_text=pl.col("revenue").round(2).cast(pl.String),
    )


def _time_columns(variant: pl.Series) -> dict[str, pl.Series]:
    """What `_time_text` needs besides ts_us: ISO forms mix 0, 3 and 6 fractional digits (19, 23
    or 26 characters) and several UTC offsets, picked by the record's variant."""
    variant_numbers = variant.to_numpy()
    offset = (variant_numbers // 3) % len(OFFSETS)
    return {
        "iso_length": pl.Series(np.array([19, 23, 26])[variant_numbers % 3]),
        "offset_us": pl.Series(np.array([m for _, m in OFFSETS])[offset] * 60_000_000),
        "offset_text": _decode(pl.Series(offset), tuple(o for o, _ in OFFSETS)),
    }


def _numbered(prefix: str, digits: int, numbers: pl.Series) -> pl.Series:
    """Names like u000042: formatted once per distinct number, then gathered; -1 → null."""
    count = int(numbers.max() or 0) + 1
    names = pl.select(
        pl.format(f"{prefix}{{}}", pl.int_range(0, count).cast(pl.String).str.zfill(digits))
    ).to_series()
    index = numbers.to_numpy()
    return pl.concat([names, pl.Series([None], dtype=pl.String)]).gather(
        np.where(index < 0, count, index)
    )


def _decode(codes: pl.Series, names: tuple[str, ...]) -> pl.Series:
    """Index → name; -1 (none) → null."""
    index = codes.to_numpy()
    return pl.Series([*names, None], dtype=pl.String).gather(np.where(index < 0, len(names), index))


def _pick(options: tuple[str, ...], chooser: pl.Expr | None = None) -> pl.Expr:
    """One of `options` per record, chosen by its variant."""
    choice = (pl.col("variant") if chooser is None else chooser) % len(options)
    expr = pl.when(choice == 0).then(pl.lit(options[0]))
    for index, option in enumerate(options[1:], start=1):
        expr = expr.when(choice == index).then(pl.lit(option))
    return expr


def _time_text(form: str) -> pl.Expr:
    """The time as this style writes it; an offset form writes the local time at that offset,
    i.e. the same instant as the UTC time."""
    ts_us = pl.col("ts_us")
    if form == "epoch_s":
        return (ts_us // 1_000_000).cast(pl.String)
    if form == "epoch_ms":
        return (ts_us // 1_000).cast(pl.String)
    shifted = ts_us + pl.col("offset_us") if form == "iso_offset" else ts_us
    text = pl.from_epoch(shifted, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    text = text.str.slice(0, pl.col("iso_length"))
    if form == "iso_z":
        return pl.concat_str([text, pl.lit("Z")])
    if form == "iso_offset":
        return pl.concat_str([text, pl.col("offset_text")])
    return text


def _render(style: FileStyle, rows: pl.DataFrame) -> pl.DataFrame:
    """The file content of `rows` in this style: a `line` column for JSON lines, else the
    CSV/Parquet columns. Clean records take a fast path; the few bad ones get their defect."""
    if not style.json_lines:
        return rows.select(_table_columns(style))
    lines = rows.select(line=_json_line(style))["line"]
    bad = np.flatnonzero(rows["defect"].is_not_null().to_numpy())
    if len(bad):
        lines = lines.scatter(bad, rows[bad].select(line=_bad_json_line(style))["line"])
    return lines.to_frame("line")


def _string_member(key: str, value: pl.Expr) -> pl.Expr:
    """`"key":"value"`, or null (left out) when the value is null. One flat concatenation:
    nesting them is several times slower."""
    return pl.concat_str([pl.lit(f'"{key}":"'), value, pl.lit('"')])


def _member(key: str, json_value: pl.Expr) -> pl.Expr:
    """`"key":value` for a value that is JSON text already, or null when the value is null."""
    return pl.concat_str([pl.lit(f'"{key}":'), json_value])


def _json_object(members: list[pl.Expr]) -> pl.Expr:
    inner = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.concat_str([pl.lit("{"), inner, pl.lit("}")])


def _json_time(style: FileStyle) -> pl.Expr:
    text = _time_text(style.time_form)
    if style.time_form.startswith("epoch"):
        return text
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def _json_line(style: FileStyle) -> pl.Expr:
    """A clean record as one JSON line in this style's aliases."""
    head = f'{{"{style.id_key}":"' if style.id_key else None
    parts = [pl.lit(head), pl.col("event_id"), pl.lit('",')] if head else [pl.lit("{")]
    parts += [
        pl.lit(f'"{style.user_key}":"'),
        pl.col("user_id"),
        pl.lit(f'","{style.event_key}":"'),
        pl.col("event"),
        pl.lit(f'","{style.time_key}":'),
        _json_time(style),
        pl.lit(',"properties":'),
        _json_properties(style),
        pl.lit("}"),
    ]
    return pl.concat_str(parts)


def _json_properties(style: FileStyle, defects: bool = False) -> pl.Expr:
    """The properties object; with `defects`, invalid revenues and oversized attachments."""
    revenue = _member(style.revenue_key, pl.col("revenue_text"))
    extras = [pl.when(pl.col("event") == "purchase").then(pl.lit('"currency":"USD"'))]
    if defects:
        defect = pl.col("defect")
        bad_revenue = _string_member(style.revenue_key, _pick(BAD_REVENUES))
        revenue = pl.when(defect == "invalid_revenue").then(bad_revenue).otherwise(revenue)
        attachment = pl.lit(f'"attachment":"{OVERSIZED_MARK}"')
        extras.append(pl.when(defect == "oversized_record").then(attachment))
    return _json_object(
        [
            _string_member(style.platform_key, pl.col("platform")),
            _string_member(style.channel_key, pl.col("channel")),
            _string_member(style.campaign_key, pl.col("campaign")),
            _string_member("country", pl.col("country")),
            _string_member("page", pl.col("page")),
            _string_member("item_id", pl.col("item_id")),
            _string_member("query", pl.col("query")),
            revenue,
            *extras,
        ]
    )


def _absent_or_null() -> pl.Expr:
    """A missing field is either left out or written as JSON null."""
    return pl.when(pl.col("variant") % 2 == 0).then(NULL).otherwise(pl.lit("null"))


def _bad_json_line(style: FileStyle) -> pl.Expr:
    """A JSON-lines record with its defect (CONTRACT §2 quarantine reasons)."""
    defect, variant = pl.col("defect"), pl.col("variant")
    wrong_type = defect == "invalid_type"
    quoted_user = pl.concat_str([pl.lit('"'), pl.col("user_id"), pl.lit('"')])
    quoted_event = pl.concat_str([pl.lit('"'), pl.col("event"), pl.lit('"')])
    user = (
        pl.when(defect == "missing_user_id")
        .then(_absent_or_null())
        .when(wrong_type & (variant % 4 == 0))
        .then(pl.concat_str([pl.lit('{"id":'), quoted_user, pl.lit("}")]))
        .otherwise(quoted_user)
    )
    event = (
        pl.when(defect == "missing_event")
        .then(_absent_or_null())
        .when(wrong_type & (variant % 4 == 2))
        .then(pl.concat_str([pl.lit("["), quoted_event, pl.lit("]")]))
        .otherwise(quoted_event)
    )
    timestamp = (
        pl.when(defect == "missing_timestamp")
        .then(_absent_or_null())
        .when(defect == "invalid_timestamp")
        .then(pl.concat_str([pl.lit('"'), _pick(BAD_TIMESTAMPS), pl.lit('"')]))
        .otherwise(_json_time(style))
    )
    properties = (
        pl.when(wrong_type & (variant % 4 == 1))
        .then(pl.lit("[1,2]"))
        .when(wrong_type & (variant % 4 == 3))
        .then(pl.lit('"not an object"'))
        .otherwise(_json_properties(style, defects=True))
    )
    members = [
        _member(style.user_key, user),
        _member(style.event_key, event),
        _member(style.time_key, timestamp),
        _member("properties", properties),
    ]
    if style.id_key:
        members.insert(0, _string_member(style.id_key, pl.col("event_id")))
    line = _json_object(members)
    # a strict prefix of a JSON object never parses: the object is not closed
    truncated = line.str.slice(0, line.str.len_chars() * 3 // 5)
    broken = pl.when(variant % 2 == 0).then(truncated).otherwise(_pick(GARBAGE_LINES, variant // 2))
    return pl.when(defect == "malformed_record").then(broken).otherwise(line)


def _table_columns(style: FileStyle) -> list[pl.Expr]:
    """CSV/Parquet columns: properties as top-level columns, missing values as empty/null."""
    defect = pl.col("defect")
    if style.typed:
        time_value = pl.col("ts_us") // 1_000  # epoch milliseconds, an integer column
        revenue = pl.col("revenue")
    else:
        time_value = pl.when(defect == "invalid_timestamp").then(_pick(BAD_TIMESTAMPS))
        time_value = time_value.otherwise(_time_text(style.time_form))
        revenue = pl.when(defect == "invalid_revenue").then(_pick(BAD_REVENUES))
        revenue = revenue.otherwise(pl.col("revenue_text"))
    columns = {
        style.user_key: pl.when(defect == "missing_user_id").then(NULL).otherwise("user_id"),
        style.event_key: pl.when(defect == "missing_event").then(NULL).otherwise("event"),
        style.time_key: pl.when(defect == "missing_timestamp").then(None).otherwise(time_value),
        style.platform_key: pl.col("platform"),
        style.channel_key: pl.col("channel"),
        style.campaign_key: pl.col("campaign"),
        style.revenue_key: revenue,
        "country": pl.col("country"),
        "page": pl.col("page"),
        "item_id": pl.col("item_id"),
        "query": pl.col("query"),
    }
    if style.id_key:
        columns = {style.id_key: pl.col("event_id"), **columns}
    return [expr.alias(name) for name, expr in columns.items()]


def _write_file(path: Path, style: FileStyle, frame: pl.DataFrame) -> None:
    if style.ext == ".parquet":
        frame.write_parquet(path, compression="zstd")
        return
    if style.json_lines:
        text = frame["line"].str.join("\n").item() + "\n"
        if OVERSIZED_MARK in text:
            text = text.replace(OVERSIZED_MARK, "x" * OVERSIZED_BYTES)
        data = text.encode()
    else:
        buffer = io.BytesIO()
        frame.write_csv(buffer)
        data = buffer.getvalue()
    if style.ext.endswith(".gz"):
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)  # mtime=0: reproducible
    path.write_bytes(data)


def write_labels(path: Path, labels: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(labels, indent=2) + "\n")
