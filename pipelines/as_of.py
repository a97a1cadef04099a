"""The warehouse as it was on a day: funnels, retention and cohorts rebuilt from the events up to
that day, so a report written again later shows the same numbers (issue 16, item 2).

`as_of_warehouse` opens an in-memory DuckDB and copies into it, through the caller's connection,
the kept events dated on or before the day (without their raw text) and the user keys; it builds
`sessions`, `users`, `retention`, `cohorts`, `funnel_steps` and `funnel_daily` there with the
marts' own functions, and copies every other table of the warehouse as it is (`daily_metrics`,
`anomalies`, ...: one row per day, which later days do not change). A warehouse without events
(only mart tables, as in some tests), or without events after the day (the daily run's report
of the latest day), is used as it is: its marts are the day's already.

Cost: about half a second per report on the 90-day demo (copy, sessions, funnels), paid only
by reports of days before the last event date (backfills, `eventpulse report` of an old day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from pipelines.settings import Settings
from pipelines.warehouse import connect, prepare_base_schema

# Rebuilt as of the day, or not read by reports (large, and the events' own bookkeeping).
NOT_COPIED = {
    "event_copies",
    "user_keys",
    "sessions",
    "users",
    "retention",
    "cohorts",
    "funnel_steps",
    "funnel_daily",
    "quarantine",
    "identities",
}


@contextmanager
def as_of_warehouse(
    conn: duckdb.DuckDBPyConnection, settings: Settings, day: dt.date
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on which the event-history marts are those of the end of `day`."""
    tables = _tables(conn)
    if not {"event_copies", "user_keys"} <= tables or (
        _last_event_date(conn) <= day and _marts_current(conn)
    ):
        # No events, or none after the day (the daily run's own report): the marts as they are
        # are those of the day, without rebuilding them.
        yield conn
        return
    memory = connect(Path(":memory:"))
    try:
        _copy(
            conn,
            memory,
            "event_copies",
            "select * replace (null::varchar as raw) from event_copies "
            "where kept and event_date <= $day",
            {"day": day},
        )
        _copy(conn, memory, "user_keys", "select * from user_keys")
        prepare_base_schema(memory)
        build_sessions(memory, settings)
        build_users(memory, settings)
        build_retention(memory, settings.retention, settings.timezone)
        build_cohorts(memory, settings)
        build_funnels(memory, settings)
        for table in sorted(tables - NOT_COPIED - _tables(memory)):
            _copy(conn, memory, table, "select * from query_table($table)", {"table": table})
        yield memory
    finally:
        memory.close()


def _marts_current(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the marts have this version's columns (a warehouse built before `is_complete`
    gets its marts rebuilt here, so `eventpulse report` works before the next run)."""
    ((found,),) = conn.execute(
        "select count(*) from duckdb_columns() where database_name = current_database() "
        "and table_name in ('retention', 'cohorts', 'funnel_daily') "
        "and column_name = 'is_complete'"
    ).fetchall()
    return found == 3


def _last_event_date(conn: duckdb.DuckDBPyConnection) -> dt.date:
    ((last,),) = conn.execute("select max(event_date) from event_copies where kept").fetchall()
    return last or dt.date.min


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "select table_name from duckdb_tables() "
        "where database_name = current_database() and schema_name = 'main' and not temporary"
    ).fetchall()
    return {name for (name,) in rows}


def _copy(
    source: duckdb.DuckDBPyConnection,
    target: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    params: dict | None = None,
) -> None:
    """Copy a query's rows into a new table of `target` (Arrow batches, no file in between)."""
    batches = source.sql(query, params=params or {}).arrow()
    target.register("copied_rows", batches)
    try:
        quoted = table.replace('"', '""')  # a name from the catalog, quoted as an identifier
        target.execute(f'create table "{quoted}" as select * from copied_rows')
    finally:
        target.unregister("copied_rows")
