"""The warehouse as it was on a day: the marts rebuilt from what had arrived by the end of that
day, so a report written again later shows the same numbers (issue 16, item 2).

What a day's report knows is what its arrival folders held: the kept events with
`arrival_date` on or before the day and `event_date` on or before it. An event that happened
that day but arrived later (a late event) is not in the report, as it was not in the report the
daily run wrote on the day. Identity follows the same rule: an anonymous visitor is the person a
link that had arrived by the day says (a link arriving later re-attributes events in later
reports only).

`as_of_warehouses` replays the history into an in-memory DuckDB, one report day after another
(oldest first): it copies, through the caller's connection, every kept event (without its raw
text) and the user keys once, works out when each anonymous id's link changes
(sql/as_of/replay_links.sql), and for each day adds the events that arrived or came to be dated
since the previous one and moves the anonymous events a new link re-attributes
(sql/as_of/replay_day.sql), recording the (person, day) pairs that changed as a load does. The
marts then update with their own incremental models (`sessions`, `users`, `daily_metrics` with
its `dimension_values`, `cohorts`, `retention`, `funnel_steps`, `funnel_daily`: each reads
only the changed persons' events, then counts its table from small per-user tables). The
anomaly rows are those the day knew: a day scored again after late events keeps its earlier
rows in `anomaly_history` with the arrival days they knew; the versions are gathered once
(sql/as_of/anomaly_versions.sql) and each step picks again only the days whose pick the step
can change (sql/as_of/anomalies_day.sql, the rule of sql/marts/anomalies_as_of.sql). Every
other table is copied as it is. A warehouse without events (only mart tables, as in some
tests), or with nothing dated or arrived after the day (the daily run's report of the latest
day), is used as it is: its marts are the day's already. `as_of_warehouse` is the same replay
for one day.

Cost: the copy once, then per report day what the day changed: the changed persons' events are
read again (their whole history: a person's sessions, attempts and returning periods depend on
all of it), and the marts are counted from per-user tables. The replay's connection is its
own, so the marts' set-up (the macros their models need, the base schema) runs once per replay
(`pipelines.sql.setup_once`), not before each of the seven marts of every step: a step runs
~87 model statements where it ran ~337. A step with its report costs 0.96 s of CPU at the end
of the 360-day demo history, 0.65 s at 60 days and 0.49 s on the first days, where 9f7c357
cost 1.14, 0.78 and 0.61 s (alternately, a quiet machine, benchmarks/results/replay_step_bench.md);
the report is ~0.2-0.35 s of it (its charts). What is left on the first days (~0.4 s of marts)
is those statements and refresh_mart's bookkeeping (~60 small queries); at 360 days the
changed persons' events are found among all 1.6M copies by several marts, and funnel_steps,
dimension_values and retention are counted again from their per-user tables each step. The
in-memory warehouse runs on the caller's DuckDB threads: a backfill's report processes share
the CPUs (assets/reports/build.py), and more threads than cores only add switching.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from assets.marts.cohorts import update_cohorts
from assets.marts.funnels import update_funnels
from assets.marts.metrics import update_daily_metrics
from assets.marts.retention import update_retention
from assets.marts.sessions_users import update_sessions, update_users
from pipelines.settings import Settings
from pipelines.sql import run_sql_file, setup_once
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
    "cohort_user_days",
    "cohort_members",
    "cohort_user_periods",
    "cohort_cells",
    "cohort_segment_sizes",
    "cohort_segment_values",
    "retention_users",
    "funnel_steps",
    "funnel_daily",
    "funnel_user_attempts",
    "quarantine",
    "identities",
    "mart_changes",
    "mart_state",
}
# Rewritten as of each day from the warehouse's versions (sql/as_of/anomalies_day.sql, the rule
# of sql/marts/anomalies_as_of.sql).
ANOMALY_TABLES = ("anomalies", "anomaly_incidents")
BEGINNING = dt.date(1, 1, 1)


@contextmanager
def as_of_warehouse(
    conn: duckdb.DuckDBPyConnection, settings: Settings, day: dt.date
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on which the event-history marts are those of the end of `day`."""
    with as_of_warehouses(conn, settings, [day]) as as_of:
        yield as_of(day)


@contextmanager
def as_of_warehouses(
    conn: duckdb.DuckDBPyConnection, settings: Settings, days: Sequence[dt.date]
) -> Iterator[Callable[[dt.date], duckdb.DuckDBPyConnection]]:
    """`as_of(day)` for each of `days`, asked oldest first: a connection on which the
    event-history marts are those of the end of that day (valid until the next call)."""
    replay = _Replay(conn, settings, max(days))
    try:
        yield replay.as_of
    finally:
        replay.close()


class _Replay:
    """The in-memory warehouse moved forward from one asked day to the next."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, settings: Settings, last: dt.date):
        self.conn = conn
        self.settings = settings
        self.last = last
        self.tables = _tables(conn)
        self.has_events = {"event_copies", "user_keys"} <= self.tables
        self.known_until = _last_known_date(conn) if self.has_events else dt.date.min
        self.current = self.has_events and _marts_current(conn)
        # The anomaly rows are picked as of each day from their kept versions.
        self.anomaly_versions = {*ANOMALY_TABLES, "anomaly_days"} <= self.tables
        self.memory: duckdb.DuckDBPyConnection | None = None
        self.scope = ExitStack()
        self.previous = BEGINNING
        self._copied = False

    def as_of(self, day: dt.date) -> duckdb.DuckDBPyConnection:
        if day < self.previous:
            raise ValueError(f"as_of({day}) after as_of({self.previous}): ask days oldest first")
        if not self.has_events or (self.known_until <= day and self.current):
            # No events, or none dated or arrived after the day (the daily run's own report):
            # the marts as they are are those of the day, without rebuilding them.
            return self.conn
        memory = self.memory or self._start()
        previous, self.previous = self.previous, day
        run_sql_file(memory, "as_of/replay_day.sql", {"previous": previous, "day": day})
        update_sessions(memory, self.settings)
        update_users(memory, self.settings)
        update_daily_metrics(memory, self.settings)
        update_cohorts(memory, self.settings)
        update_retention(memory, self.settings.retention, self.settings.timezone)
        update_funnels(memory, self.settings)
        if not self._copied:
            self._copy_other_tables(memory)
        if self.anomaly_versions:
            run_sql_file(memory, "as_of/anomalies_day.sql", {"previous": previous, "day": day})
        return memory

    def _start(self) -> duckdb.DuckDBPyConnection:
        memory = connect(Path(":memory:"))
        self.memory = memory
        # Its own connection, which an error ends: the marts' macros and the base schema are
        # set up once, not again by each of the seven marts of every step.
        self.scope.enter_context(setup_once(memory))
        # The caller's thread budget: a backfill's report processes share the CPUs.
        ((threads,),) = self.conn.execute("select current_setting('threads')").fetchall()
        memory.execute("set threads = $threads", {"threads": threads})
        _copy(
            self.conn,
            memory,
            "replay_copies",
            "select * replace (null::varchar as raw) from event_copies "
            "where kept and arrival_date <= $last",
            {"last": self.last},
        )
        _copy(self.conn, memory, "user_keys", "select * from user_keys")
        prepare_base_schema(memory)
        run_sql_file(memory, "as_of/replay_links.sql")
        return memory

    def _copy_other_tables(self, memory: duckdb.DuckDBPyConnection) -> None:
        """Once, after the first build: the tables reports read as they are (and the anomaly
        tables' versions to pick from)."""
        for table in sorted(self.tables - NOT_COPIED - _tables(memory)):
            _copy(self.conn, memory, table, "select * from query_table($table)", {"table": table})
        if self.anomaly_versions:
            run_sql_file(memory, "as_of/anomaly_versions.sql")
        self._copied = True

    def close(self) -> None:
        self.scope.close()
        if self.memory is not None:
            self.memory.close()


def _marts_current(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the marts have this version's columns (a warehouse built before `is_complete`
    gets its marts rebuilt here, so `eventpulse report` works before the next run)."""
    ((found,),) = conn.execute(
        "select count(*) from duckdb_columns() where database_name = current_database() "
        "and table_name in ('retention', 'cohorts', 'funnel_daily') "
        "and column_name = 'is_complete'"
    ).fetchall()
    return found == 3


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
