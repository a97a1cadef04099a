"""The warehouse as it was on a day: the marts rebuilt from what had arrived by the end of that
day, so a report written again later shows the same numbers (issue 16, item 2).

What a day's report knows is what its arrival folders held: the kept events with
`arrival_date` on or before the day and `event_date` on or before it. An event that happened
that day but arrived later (a late event) is not in the report, as it was not in the report the
daily run wrote on the day. Identity follows the same rule: an anonymous visitor is the person a
link that had arrived by the day says (a link arriving later re-attributes events in later
reports only).

`as_of_warehouse` opens an in-memory DuckDB and copies into it, through the caller's connection,
those events (without their raw text) and the user keys; it links identities there with ingest's
own SQL and builds `sessions`, `users`, `daily_metrics` (with its `dimension_values`),
`retention`, `cohorts`, `funnel_steps` and `funnel_daily` with the marts' own functions. The
anomaly rows are those the day knew: a day scored again after late events keeps its earlier
rows in `anomaly_history` with the arrival days they knew (sql/marts/anomalies_as_of.sql picks
them). Every other table is copied as it is. A warehouse without events (only mart tables, as
in some tests), or with nothing dated or arrived after the day (the daily run's report of the
latest day), is used as it is: its marts are the day's already.

Cost: about half a second of CPU per report on the 90-day demo (copy, sessions, funnels), paid
only by reports of days before the last event or arrival date (backfills, `eventpulse report` of
an old day). It grows with the history before the day, so a backfill's reports cost the square
of its length: 8 s a report, 48 minutes for 360 days of 7,500 records (issue 14). Replaying the
days in order through the incremental marts would make it linear.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from pipelines.settings import Settings
from pipelines.sql import run_sql_file
from pipelines.warehouse import connect, prepare_base_schema

# Rebuilt as of the day, or not read by reports (large, and the events' own bookkeeping).
NOT_COPIED = {
    "event_copies",
    "user_keys",
    "sessions",
    "users",
    "daily_metrics",
    "dimension_values",
    "dimension_user_days",
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
        _last_known_date(conn) <= day and _marts_current(conn)
    ):
        # No events, or none dated or arrived after the day (the daily run's own report): the
        # marts as they are are those of the day, without rebuilding them.
        yield conn
        return
    memory = connect(Path(":memory:"))
    try:
        _copy(
            conn,
            memory,
            "event_copies",
            "select * replace (null::varchar as raw) from event_copies "
            "where kept and arrival_date <= $day",
            {"day": day},
        )
        _copy(conn, memory, "user_keys", "select * from user_keys")
        prepare_base_schema(memory)
        _link_identities(memory, day)
        # After linking: a record of a later day that had arrived by the day links identities.
        memory.execute("delete from event_copies where event_date > $day", {"day": day})
        build_sessions(memory, settings)
        build_users(memory, settings)
        build_daily_metrics(memory, settings)
        build_retention(memory, settings.retention, settings.timezone)
        build_cohorts(memory, settings)
        build_funnels(memory, settings)
        for table in sorted(tables - NOT_COPIED - _tables(memory)):
            _copy(conn, memory, table, "select * from query_table($table)", {"table": table})
        if {"anomalies", "anomaly_incidents", "anomaly_days"} <= tables:
            run_sql_file(memory, "marts/anomalies_as_of.sql", {"day": day})
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


def _link_identities(memory: duckdb.DuckDBPyConnection, day: dt.date) -> None:
    """Settle every anonymous id's person from the copies in `memory` (ingest's own rule, in
    sql/staging/resolve_identities.sql), as if they were all the warehouse had: every anonymous
    id counts as touched, and no other day's copies are in play."""
    memory.execute(
        "create or replace temp table touched_anonymous as "
        "select distinct anonymous_id from event_copies where anonymous_id is not null"
    )
    memory.execute(
        "create or replace temp table other_copies as select anonymous_id from event_copies limit 0"
    )
    run_sql_file(memory, "staging/resolve_identities.sql", {"arrival_date": day})


def _last_known_date(conn: duckdb.DuckDBPyConnection) -> dt.date:
    """The last day an event is dated or arrived on."""
    ((last,),) = conn.execute(
        "select greatest(max(event_date), max(arrival_date)) from event_copies where kept"
    ).fetchall()
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
