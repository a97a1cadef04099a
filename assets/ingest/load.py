"""Ingest core (Dagster-free). Event files of one arrival day -> `events`, `quarantine`, `ingest_log`.

CONTRACT §2. Files are read with DuckDB's readers as raw lines/rows (`sql/staging/stage_*`),
validated in SQL (`parse_records.sql`) and the day is replaced in one transaction
(`load_partition.sql`). Every record read ends in `events` or `quarantine`.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path

import duckdb

from assets.ingest.fields import SourcePaths, source_paths
from pipelines import journal
from pipelines.landing import arrival_files, arrival_folder, files_fingerprint
from pipelines.sql import code_fingerprint, run_sql_file, sql_text
from pipelines.warehouse import prepare_base_schema

FORMATS = {
    ".jsonl": "lines",
    ".ndjson": "lines",
    ".json": "lines",
    ".csv": "csv",
    ".parquet": "parquet",
}
# The valid ranges (CONTRACT §2 invalid_timestamp, invalid_revenue), decided here once. An event
# time before 1990 is a default or a unit mistake (0, -1, "epoch", year 1), not product usage,
# and would stretch every calendar back to it; a revenue beyond ±1e15 overflows the exact
# DECIMAL(38, 9) sums of the marts once a few such records add up.
EARLIEST_EVENT_TIME = dt.datetime(1990, 1, 1)
LARGEST_REVENUE = 1e15
# Days validated in one pass by a range load: enough that the per-pass cost is spread thin
# (about 0.2 s a pass), few enough that their raw records stay small (7,500 a day in the demo;
# a batch of bigger days ends at BATCH_RECORDS).
BATCH_DAYS = 30
BATCH_RECORDS = 2_000_000
# Days after every stored one (a backfill) are replaced together (_append_days), which costs
# about the same whatever the number of days: a batch of them may span a quarter.
APPEND_BATCH_DAYS = 90
# A range load commits each day, and DuckDB checkpoints whenever its write-ahead log passes
# checkpoint_threshold (16 MB by default): every day or two of demo data, each time rewriting
# the growing tables' last row groups (a fifth of a 30-day backfill's CPU went to commits).
# The writer checkpoints before it publishes (pipelines/warehouse.py), so a range load lets
# the log grow this far; bounded, since data not yet checkpointed is held in memory.
RANGE_CHECKPOINT_THRESHOLD = "256MB"
STAGE_SQL = {
    "lines": "staging/stage_lines.sql",
    "csv": "staging/stage_csv.sql",
    "parquet": "staging/stage_parquet.sql",
}
# The code that turns files into rows, and the library that reads and validates them: a load
# records their hash (with the files' and the aliases'), and a day whose hash is unchanged is
# not loaded again (_unchanged_days).
INGEST_CODE = (
    "sql/staging/*.sql",
    "sql/macros/*.sql",
    "assets/ingest/*.py",
    "pipelines/landing.py",
    "pipelines/sql.py",
    "pipelines/warehouse.py",
)
INGEST_LIBRARIES = ("duckdb",)
# What the readers rejected (undecodable lines, CSV rows that do not match the header): run
# only for a file that has any, since it renumbers the file's staged records.
REJECTED_SQL = {
    "lines": "staging/stage_rejected_lines.sql",
    "csv": "staging/stage_rejected_rows.sql",
}


@dataclass
class IngestResult:
    """What one partition load did (mirrors its `ingest_log` row)."""

    arrival_date: dt.date
    files: int
    records: int
    loaded: int
    quarantined: int
    duplicates: int
    unreadable_files: int
    by_reason: dict[str, int] = field(default_factory=dict)
    # Of the load, in resolve_identities.sql (days replaced together: a share of append_days.sql).
    identity_seconds: float = 0.0
    # Nothing arrived: what the day already holds from earlier loads, kept as it is.
    kept_events: int = 0
    kept_quarantined: int = 0
    # Its files, the aliases and the ingest code are those of its last load: not read again.
    unchanged: bool = False

    @property
    def nothing_arrived(self) -> bool:
        return self.files == 0

    def summary(self) -> str:
        if self.nothing_arrived:
            kept = (
                f"; kept the {self.kept_events} events and {self.kept_quarantined} quarantined "
                "records of earlier loads (`eventpulse forget` removes a day)"
                if self.kept_events or self.kept_quarantined
                else ""
            )
            return (
                f"{self.arrival_date}: nothing arrived (no files under "
                f"date={self.arrival_date}){kept}"
            )
        if self.unchanged:
            return (
                f"{self.arrival_date}: unchanged since its last load ({self.files} files, same "
                f"names, sizes and times): kept its {self.loaded} events and "
                f"{self.quarantined} quarantined records"
            )
        return (
            f"{self.arrival_date}: {self.records} records from {self.files} files -> "
            f"{self.loaded} events, {self.quarantined} quarantined "
            f"({self.duplicates} duplicates, {self.unreadable_files} unreadable files)"
        )


def file_format(path: Path) -> str | None:
    """`lines`, `csv` or `parquet` from the extension (`.gz` allowed except for Parquet)."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        kind = FORMATS.get(suffixes[0]) if len(suffixes) == 2 else None
        return kind if kind in ("lines", "csv") else None
    return FORMATS.get(suffixes[-1]) if suffixes else None


def load_partition(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    day: dt.date,
    aliases: Mapping[str, Sequence[str]] | None = None,
    timezone: str = "UTC",
    reload_unchanged: bool = False,
) -> IngestResult:
    """Load (or re-load) one arrival day; the day's rows are replaced atomically. `aliases`:
    more source names per record field (eventpulse.yaml `aliases`), tried first; `timezone`:
    the project zone that events' `event_date` is cut in (stored events are dated again when
    it changed). A day whose files, aliases and ingest code are those of its last load is not
    read again (its load is logged with its rows as they are), unless `reload_unchanged`.

    A day whose folder is missing or empty is "nothing arrived" (CONTRACT §2): what earlier
    loads of it put in the warehouse stays (teams clean up landing files once ingested);
    `forget_partition` removes a day's data.
    """
    return load_range(conn, landing_dir, [day], aliases, timezone, reload_unchanged)[0]


def load_range(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    days: Sequence[dt.date],
    aliases: Mapping[str, Sequence[str]] | None = None,
    timezone: str = "UTC",
    reload_unchanged: bool = False,
) -> list[IngestResult]:
    """Load (or re-load) arrival days in the order given, each as `load_partition` loads it:
    the warehouse ends row for row as after one `load_partition` per day. Cheaper than those
    calls: the schema is prepared once, and the records of up to BATCH_DAYS days
    (BATCH_RECORDS records) are validated in one pass, whose fixed cost (planning
    parse_records.sql) is otherwise paid per day. Each day is replaced in its own
    transaction, except days after every stored one (a backfill, a catch-up), which are
    replaced together, up to APPEND_BATCH_DAYS in one transaction (append_days.sql): what a
    crash loses is re-loaded by running the range again."""
    prepare_base_schema(conn)
    date_events_in(conn, timezone)
    sources = source_paths(aliases)
    fingerprints = _load_fingerprints(landing_dir, days, sources)
    unchanged = set() if reload_unchanged else _unchanged_days(conn, fingerprints)
    if len(days) > 1:
        conn.execute(f"set checkpoint_threshold = '{RANGE_CHECKPOINT_THRESHOLD}'")
    results: list[IngestResult] = []
    pending: list[dt.date] = []  # days to load together, each once

    def load_pending() -> None:
        results.extend(_load_days(conn, landing_dir, pending, sources, timezone, fingerprints))
        if not reload_unchanged:
            unchanged.update(day for day in pending if day in fingerprints)
        pending.clear()

    try:
        # In the order given, as one load per day would: a day is skipped when, at its turn,
        # its last load read what a load now would (a day given twice is loaded once).
        for day in days:
            if pending and (day in unchanged or day in pending):
                load_pending()
            if day in unchanged:
                results.append(_log_unchanged(conn, day))
            else:
                pending.append(day)
        if pending:
            load_pending()
    finally:
        if len(days) > 1:
            conn.execute("reset checkpoint_threshold")
    return results


def _load_days(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    days: list[dt.date],
    sources: SourcePaths,
    timezone: str,
    fingerprints: Mapping[dt.date, str],
) -> list[IngestResult]:
    """Load `days` (each once), batch by batch: their files are read and their rows replaced."""
    results: list[IngestResult] = []
    remaining = days
    batch_days = APPEND_BATCH_DAYS if _after_stored(conn, days) else BATCH_DAYS
    while remaining:
        batch, staged = _stage_batch(
            conn, landing_dir, remaining, sources, batch_days, fingerprints
        )
        results += _store_days(conn, batch, staged, sources, timezone)
        remaining = remaining[len(batch) :]
    return results


def _load_fingerprints(
    landing_dir: Path, days: Sequence[dt.date], sources: SourcePaths
) -> dict[dt.date, str]:
    """What a load of each day with files would read: its files (names, sizes, modification
    and change times), the aliases and the ingest code, as one hash."""
    # The parameters hold every alias's place (the configured macros are made from them).
    settings = json.dumps(sources.parameters(), sort_keys=True, default=str)
    common = f"{code_fingerprint(INGEST_CODE, INGEST_LIBRARIES)}\0{settings}"
    fingerprints = {}
    for day in dict.fromkeys(days):
        folder = arrival_folder(landing_dir, day)
        if files := arrival_files(folder):
            text = f"{common}\0{files_fingerprint(folder, files, with_ctime=True)}"
            fingerprints[day] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return fingerprints


def _unchanged_days(
    conn: duckdb.DuckDBPyConnection, fingerprints: Mapping[dt.date, str]
) -> set[dt.date]:
    """The days whose latest load read what a load now would: loading them again would give
    the same rows (the result does not depend on load order), so a re-run skips them."""
    if not fingerprints:
        return set()
    stored = conn.execute(
        "select arrival_date, fingerprint from load_fingerprints "
        "where list_contains($days, arrival_date)",
        {"days": list(fingerprints)},
    ).fetchall()
    return {day for day, fingerprint in stored if fingerprints.get(day) == fingerprint}


def _log_unchanged(conn: duckdb.DuckDBPyConnection, day: dt.date) -> IngestResult:
    """Log the load of an unchanged day (CONTRACT §3 ingest_log: a row per partition load) as
    loading it again would: its files and records as last read, its rows as they are now (loads
    of other days since may have taken or given back copies of its event ids)."""
    conn.execute(
        """
        insert into ingest_log by name
        with latest as (
            select * from ingest_log where arrival_date = $day order by finished_at desc limit 1
        )
        select arrival_date, files, records, unreadable_files,
            (select count(*) from events where arrival_date = $day) as loaded,
            (select count(*) from quarantine where arrival_date = $day) as quarantined,
            (select count(*) from quarantine
              where arrival_date = $day and reason = 'duplicate_event_id') as duplicates,
            $now as started_at, $now as finished_at
        from latest
        """,
        {"day": day, "now": _utc_now()},
    )
    return replace(_results(conn, [day])[day], unchanged=True)


def _stage_batch(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    days: list[dt.date],
    sources: SourcePaths,
    batch_days: int,
    fingerprints: Mapping[dt.date, str],
) -> tuple[list[dt.date], dict[dt.date, _StagedDay]]:
    """Stage the files of the first days of `days` into raw_records: up to `batch_days`, and
    no more once BATCH_RECORDS records are staged (a backfill of big days stays in memory).
    Returns those days and the ones staged (a day whose folder is empty or missing is not)."""
    run_sql_file(conn, "staging/raw_records.sql")
    batch: list[dt.date] = []
    staged: dict[dt.date, _StagedDay] = {}
    for day in days[:batch_days]:
        if staged and _staged_records(conn) >= BATCH_RECORDS:
            break
        batch.append(day)
        folder = arrival_folder(landing_dir, day)
        files = arrival_files(folder)
        if files and day not in staged:
            named = [(path, path.relative_to(folder).as_posix()) for path in files]
            staged[day] = _stage_day(conn, day, named, sources, folder, fingerprints.get(day))
    return batch, staged


def _staged_records(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("select count(*) from raw_records").fetchall()[0][0]


def forget_partition(
    conn: duckdb.DuckDBPyConnection, day: dt.date, timezone: str = "UTC"
) -> IngestResult:
    """Remove everything the loads of one arrival day put in the warehouse (`eventpulse
    forget`): its events and quarantine rows; copies of its event ids that other days hold are
    decided again, and identities are resolved again without it."""
    prepare_base_schema(conn)
    date_events_in(conn, timezone)
    run_sql_file(conn, "staging/raw_records.sql")
    staged = {day: _StagedDay(day, files=0, unreadable=0, started_at=_utc_now())}
    return _store_days(conn, [day], staged, source_paths(None), timezone)[0]


def date_events_in(conn: duckdb.DuckDBPyConnection, timezone: str) -> bool:
    """Make every stored event's `event_date` a day in `timezone`: when the project's zone
    changed since they were dated, date them all again (one transaction). True when it did."""
    stored = conn.execute("select timezone from event_date_zone").fetchall()
    dated_in = stored[0][0] if stored else None
    if dated_in == timezone:
        return False
    conn.execute("begin transaction")
    try:
        run_sql_file(conn, "staging/redate_events.sql", {"timezone": timezone})
        journal.record_whole(conn, "event_copies")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    # No row: a new warehouse, or one from before `timezone` existed; both were dated in UTC.
    return (dated_in or "UTC") != timezone


@dataclass
class _StagedDay:
    """An arrival day whose files are in raw_records: it replaces the day's rows."""

    day: dt.date
    files: int
    unreadable: int
    started_at: dt.datetime
    fingerprint: str | None = None  # _load_fingerprints; None: forgotten, nothing to skip


def _stage_day(
    conn: duckdb.DuckDBPyConnection,
    day: dt.date,
    files: list[tuple[Path, str]],
    sources: SourcePaths,
    folder: Path,
    fingerprint: str | None,
) -> _StagedDay:
    """Append the records of `files` (path, name as stored in source_file), all under `folder`,
    to raw_records."""
    started_at = _utc_now()
    unreadable = 0
    for path, source_file in files:
        if not path.resolve().is_relative_to(folder.resolve()):
            # A symbolic link out of the arrival folder (to /etc/passwd, a key file): never read.
            _record_unreadable(
                conn,
                day,
                source_file,
                "a symbolic link to a file outside its arrival folder; not read (copy the file "
                "into the folder instead)",
            )
            unreadable += 1
            continue
        unreadable += not _stage_file(conn, day, path, source_file, sources.top_level_names)
    return _StagedDay(day, len(files), unreadable, started_at, fingerprint)


def _store_days(
    conn: duckdb.DuckDBPyConnection,
    days: Sequence[dt.date],
    staged: Mapping[dt.date, _StagedDay],
    sources: SourcePaths,
    timezone: str,
) -> list[IngestResult]:
    """Validate raw_records in one pass, then, day by day in order, replace each staged day
    with its records; a day not staged (nothing arrived) keeps what it holds."""
    # The stage above numbers lines by insertion order; nothing after it needs an order, and
    # without one DuckDB writes the validated records and their copies in parallel.
    conn.execute("set preserve_insertion_order = false")
    try:
        if staged:
            _parse_records(conn, sources, timezone)
            run_sql_file(conn, "staging/copy_days.sql", {"days": list(staged)})
        if _appends(conn, days, staged):
            return _append_days(conn, days, staged)
        results = []
        for day in days:
            if day not in staged:
                results.append(_kept_result(conn, day))
                continue
            _day_records(conn, day, alone=len(staged) == 1 and days.count(day) == 1)
            identity_seconds = _replace_day(conn, staged[day], _day_window(conn, day))
            results.append(_result(conn, day, identity_seconds))
    finally:
        conn.execute("reset preserve_insertion_order")
    return results


def _appends(
    conn: duckdb.DuckDBPyConnection,
    days: Sequence[dt.date],
    staged: Mapping[dt.date, _StagedDay],
) -> bool:
    """Whether the days may be replaced together (append_days.sql): several are staged, and
    they come after the stored ones (_after_stored)."""
    return len(staged) >= 2 and _after_stored(conn, days)


def _after_stored(conn: duckdb.DuckDBPyConnection, days: Sequence[dt.date]) -> bool:
    """Whether `days` come in calendar order, each once, and all after every arrival day the
    warehouse holds."""
    if any(later <= earlier for earlier, later in pairwise(days)):
        return False
    latest = conn.execute(
        "select greatest((select max(arrival_date) from event_copies), "
        "(select max(arrival_date) from quarantine), (select max(arrival_date) from ingest_log))"
    ).fetchall()[0][0]
    return latest is None or latest < days[0]


def _append_days(
    conn: duckdb.DuckDBPyConnection,
    days: Sequence[dt.date],
    staged: Mapping[dt.date, _StagedDay],
) -> list[IngestResult]:
    """Replace the staged days of `days` (see _appends) in one transaction, as one load per
    day in that order would; a day not staged (nothing arrived) holds nothing yet."""
    loaded = [staged[day] for day in days if day in staged]
    conn.execute("begin transaction")
    try:
        started = time.perf_counter()
        run_sql_file(
            conn,
            "staging/append_days.sql",
            {
                "first_day": days[0],
                "staged_days": [s.day for s in loaded],
                "files": [s.files for s in loaded],
                "unreadable_files": [s.unreadable for s in loaded],
                "started_at": [s.started_at for s in loaded],
                "finished_at": _utc_now(),
            },
        )
        elapsed = time.perf_counter() - started
        _remember_fingerprints(conn, loaded)
        journal.record_load_days(conn, [s.day for s in loaded])
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("drop view if exists batch_copies")
    by_day = _results(conn, [s.day for s in loaded])
    # Identities are resolved inside the one pass that replaces the batch's days, not timed on
    # their own: each day gets an equal share of that pass.
    share = elapsed / len(loaded)
    return [
        replace(by_day[day], identity_seconds=share) if day in by_day else _kept_result(conn, day)
        for day in days
    ]


def _results(
    conn: duckdb.DuckDBPyConnection, days: Sequence[dt.date]
) -> dict[dt.date, IngestResult]:
    """The IngestResult of each of `days` from its latest ingest_log row."""
    logged = conn.execute(
        """
        select arrival_date, files, records, loaded, quarantined, duplicates, unreadable_files
        from ingest_log where list_contains($days, arrival_date)
        qualify row_number() over (partition by arrival_date order by finished_at desc) = 1
        """,
        {"days": list(days)},
    ).fetchall()
    reasons: dict[dt.date, dict[str, int]] = {}
    for day, reason, count in conn.execute(
        "select arrival_date, reason, count(*) from quarantine "
        "where list_contains($days, arrival_date) group by all",
        {"days": list(days)},
    ).fetchall():
        reasons.setdefault(day, {})[reason] = count
    return {
        row[0]: IngestResult(
            row[0], *row[1:], by_reason=dict(sorted(reasons.get(row[0], {}).items()))
        )
        for row in logged
    }


def _day_records(conn: duckdb.DuckDBPyConnection, day: dt.date, alone: bool) -> None:
    """Make `day`'s validated records the parsed_records that load_partition.sql reads. The
    day a load replaces `alone` (a daily run) takes the whole batch as it is, rather than a
    copy of every record (raw text included) of a day that may hold millions."""
    if not alone:
        run_sql_file(conn, "staging/day_records.sql", {"arrival_date": day})
        return
    conn.execute("drop table if exists parsed_records")
    conn.execute("alter table parsed_batch rename to parsed_records")


def _parse_records(conn: duckdb.DuckDBPyConnection, sources: SourcePaths, timezone: str) -> None:
    conn.execute(sources.configured_macros())
    run_sql_file(
        conn,
        "staging/parse_records.sql",
        {
            "earliest_event_time": EARLIEST_EVENT_TIME,
            "largest_revenue": LARGEST_REVENUE,
            "timezone": timezone,
            **sources.parameters(),
        },
    )


def _day_window(conn: duckdb.DuckDBPyConnection, day: dt.date) -> dict[str, dt.date]:
    """The span of arrival days holding every copy the load of `day` may look at
    (day_window.sql), as the parameters of the day's statements."""
    first, last = conn.execute(sql_text("staging/day_window.sql"), {"arrival_date": day}).fetchone()
    return {"history_first": first, "history_last": last}


def _replace_day(
    conn: duckdb.DuckDBPyConnection, staged: _StagedDay, window: Mapping[str, dt.date]
) -> float:
    """Replace the day's rows with its parsed_records; returns the seconds of identity
    resolution. `window`: the day's day_window.sql."""
    day = staged.day
    # One transaction: a reader or a crash never sees the day half-replaced.
    conn.execute("begin transaction")
    try:
        run_sql_file(
            conn,
            "staging/load_partition.sql",
            {
                "arrival_date": day,
                "files": staged.files,
                "unreadable_files": staged.unreadable,
                "started_at": staged.started_at,
                "finished_at": _utc_now(),
                **window,
            },
        )
        identity_started = time.perf_counter()
        run_sql_file(conn, "staging/resolve_identities.sql", {"arrival_date": day})
        identity_seconds = time.perf_counter() - identity_started
        # What the marts must update (their incremental builds read it).
        run_sql_file(conn, "staging/record_changes.sql", {"arrival_date": day, **window})
        _remember_fingerprints(conn, [staged])
        journal.record_load_day(conn, day)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return identity_seconds


def _remember_fingerprints(conn: duckdb.DuckDBPyConnection, loads: Sequence[_StagedDay]) -> None:
    """What each load read (in its transaction): the next run skips the day while it is the
    same. A forgotten day keeps none, and neither does a day with a file that could not be read:
    the cause may pass (a file still being copied, too many open files, memory), and only
    reading the day again would load it."""
    conn.execute(
        "delete from load_fingerprints where list_contains($days, arrival_date)",
        {"days": [load.day for load in loads]},
    )
    remembered = [
        (load.day, load.fingerprint) for load in loads if load.fingerprint and not load.unreadable
    ]
    if remembered:
        conn.executemany("insert into load_fingerprints values (?, ?)", remembered)


def _kept_result(conn: duckdb.DuckDBPyConnection, day: dt.date) -> IngestResult:
    """Nothing arrived: the day as earlier loads left it."""
    kept = conn.execute(
        "select (select count(*) from events where arrival_date = $day), "
        "(select count(*) from quarantine where arrival_date = $day)",
        {"day": day},
    ).fetchall()[0]
    return IngestResult(day, 0, 0, 0, 0, 0, 0, kept_events=kept[0], kept_quarantined=kept[1])


def _stage_file(
    conn: duckdb.DuckDBPyConnection,
    day: dt.date,
    path: Path,
    source_file: str,
    field_names: Sequence[str],
) -> bool:
    """Append one file's records to raw_records; False when (part of) the file is unreadable."""
    kind = file_format(path)
    if kind is None:
        _record_unreadable(
            conn,
            day,
            source_file,
            f"unsupported file type {path.name!r}: use .jsonl, .ndjson, .json, .csv "
            "(optionally .gz) or .parquet",
        )
        return False
    if path.stat().st_size == 0:
        return True
    try:
        _run_stage(conn, day, kind, path, source_file, field_names)
        return True
    except (duckdb.Error, ValueError, OSError) as exc:
        error = _first_line(exc)
    if kind != "parquet" and _record_unreadable_lines(conn, day, path, kind, source_file, error):
        return False
    if path.suffix.lower() == ".gz":
        return _stage_truncated_gzip(conn, day, path, source_file, kind, error, field_names)
    _record_unreadable(
        conn, day, source_file, f"unreadable file: {error}; its records could not be counted"
    )
    return False


def _record_unreadable_lines(
    conn: duckdb.DuckDBPyConnection,
    day: dt.date,
    path: Path,
    kind: str,
    source_file: str,
    error: str,
) -> bool:
    """A line-based file the reader refused whole (a CSV header with a repeated name, a file
    DuckDB may not open): each of its records, one per non-blank line after a CSV header,
    becomes one malformed_record with its line number and raw text, so conservation counts
    what was sent. False when its lines cannot be read either (permission denied, a damaged
    gzip stream): then the file is one row."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    rows = []
    detail = f"unreadable file: {error}"
    cr_alone = _ends_lines_with_cr_alone(path)
    try:
        with opener(path, "rb") as handle:
            lines = iter(handle.read().split(b"\r")) if cr_alone else handle
            for line_no, line in enumerate(lines, start=1):
                text = line.rstrip(b"\r\n")
                if (kind == "csv" and line_no == 1) or not text.strip():
                    continue  # the header, blank lines: not records
                raw = text[:65536].decode("utf-8", errors="replace")
                rows.append((source_file, line_no, raw, len(text), kind == "csv", detail, day))
    except (OSError, EOFError, zlib.error):
        return False
    if not rows:
        return False
    conn.executemany("insert into raw_records values (?, ?, ?, ?, ?, ?, ?)", rows)
    return True


def _stage_truncated_gzip(
    conn: duckdb.DuckDBPyConnection,
    day: dt.date,
    path: Path,
    source_file: str,
    kind: str,
    error: str,
    field_names: Sequence[str],
) -> bool:
    """Keep the records before the damage of a broken gzip file; report the rest unreadable.

    DuckDB fails the whole file on a truncated stream, so we decompress what we can ourselves.
    """
    with tempfile.TemporaryDirectory() as scratch:
        salvaged = Path(scratch) / path.name.removesuffix(".gz").removesuffix(".GZ")
        complete_lines = _decompress_readable_prefix(path, salvaged)
        try:
            if complete_lines:
                _run_stage(conn, day, kind, salvaged, source_file, field_names)
        except (duckdb.Error, ValueError) as exc:
            error = f"{error}; {_first_line(exc)}"
    _record_unreadable(
        conn,
        day,
        source_file,
        f"damaged gzip file ({error}): the first {complete_lines} complete lines were loaded, "
        "the rest is unreadable",
    )
    return False


def _run_stage(
    conn: duckdb.DuckDBPyConnection,
    day: dt.date,
    kind: str,
    path: Path,
    source_file: str,
    field_names: Sequence[str],
) -> None:
    params: dict = {"path": literal_path(path), "source_file": source_file, "arrival_date": day}
    if kind == "csv":
        columns = field_spelling(_csv_header(path), field_names)
        params["columns"] = {name: "VARCHAR" for name in columns}
    if kind == "lines":
        # The reader takes the line ending spelt with backslashes, as in SQL text.
        params["new_line"] = "\\r" if _ends_lines_with_cr_alone(path) else "\\r\\n"
    run_sql_file(conn, STAGE_SQL[kind], params)
    if kind in REJECTED_SQL and conn.execute("select count(*) from reject_errors").fetchone()[0]:
        run_sql_file(conn, REJECTED_SQL[kind], params)


def _ends_lines_with_cr_alone(path: Path) -> bool:
    """An old Mac file: its lines end in CR alone, never LF (judged on its first 64 KiB). The
    reader's CRLF mode would drop the first character of every later line."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(65536)
    except (OSError, EOFError, zlib.error):
        return False
    return b"\r" in head and b"\n" not in head


def _csv_header(path: Path) -> list[str]:
    """Column names from the first line (DuckDB's sniffer rejects files with ragged rows)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = next(csv.reader(handle), [])
    names = [name.strip() for name in header]
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"CSV header {header!r} needs unique, non-empty column names")
    return names


def literal_path(path: Path) -> str:
    """`path` as DuckDB's readers take it literally: they expand glob patterns, so a file named
    `[ab].jsonl` would read `a.jsonl` and `b.jsonl` instead. Each glob character becomes a
    class that matches only itself."""
    return "".join(f"[{c}]" if c in "[*?" else c for c in str(path))


def field_spelling(columns: Sequence[str], field_names: Sequence[str]) -> list[str]:
    """CSV column names, those that differ from a field's source name only in case spelt as
    the source name (a spreadsheet's `User_id` is `user_id`). A name whose spelling is already
    taken by another column keeps its own."""
    spelling = {name.lower(): name for name in reversed(field_names)}
    taken = set(columns)
    renamed = []
    for column in columns:
        wanted = spelling.get(column.lower(), column)
        if wanted != column and wanted not in taken:
            taken.add(wanted)
            column = wanted
        renamed.append(column)
    return renamed


def _decompress_readable_prefix(path: Path, target: Path) -> int:
    """Write the complete lines that decompress cleanly; returns how many lines."""
    # wbits 16+MAX_WBITS: gzip framing. A decompressobj hands out what it could decode so
    # far, where GzipFile raises and drops it.
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    lines = 0
    with open(path, "rb") as raw, open(target, "wb") as out:
        try:
            while chunk := raw.read(1 << 20):
                pending += decoder.decompress(chunk)
                cut = pending.rfind(b"\n")
                if cut >= 0:
                    out.write(pending[: cut + 1])
                    lines += pending.count(b"\n", 0, cut + 1)
                    pending = pending[cut + 1 :]
        except zlib.error:
            pass  # the damaged tail: the caller reports it
    return lines


def _record_unreadable(
    conn: duckdb.DuckDBPyConnection, day: dt.date, source_file: str, error: str
) -> None:
    conn.execute(
        "insert into raw_records values ($source_file, null, null, 0, false, $error, $day)",
        {"source_file": source_file, "error": error, "day": day},
    )


def _result(conn: duckdb.DuckDBPyConnection, day: dt.date, identity_seconds: float) -> IngestResult:
    row = conn.execute(
        """
        select files, records, loaded, quarantined, duplicates, unreadable_files
        from ingest_log where arrival_date = $day order by finished_at desc limit 1
        """,
        {"day": day},
    ).fetchall()[0]
    reasons = conn.execute(
        "select reason, count(*) from quarantine where arrival_date = $day group by reason",
        {"day": day},
    ).fetchall()
    return IngestResult(
        day, *row, by_reason=dict(sorted(reasons)), identity_seconds=identity_seconds
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def conservation_failures(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Arrival days whose latest load read more or fewer records than events + quarantine hold."""
    return conn.execute(
        """
        with latest as (
            select arrival_date, records
            from ingest_log
            qualify row_number() over (partition by arrival_date order by finished_at desc) = 1
        ),
        kept as (select arrival_date, count(*) as n from events group by all),
        rejected as (select arrival_date, count(*) as n from quarantine group by all)
        select l.arrival_date, l.records, coalesce(k.n, 0), coalesce(r.n, 0)
        from latest l
        left join kept k using (arrival_date)
        left join rejected r using (arrival_date)
        where l.records <> coalesce(k.n, 0) + coalesce(r.n, 0)
        order by 1
        """
    ).fetchall()


def duplicate_event_ids(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(
        "select count(*) from (select event_id from events group by 1 having count(*) > 1)"
    ).fetchall()[0][0]
