"""The publish journal: what a build changed, so that the standby catches up without a copy.

Every warehouse file holds its generation (`publish_generation`: the n-th publish) and the
journal of the build that made it (`publish_journal`): per table it changed, either "whole
table" or a key column and the key values whose rows it replaced. The stages record it with
one call where they already know their change set:
- ingest, per arrival day (`record_load_day`, from the load's own temp tables),
- the incremental marts (`record_mart`, from `mart_changes`),
- a scoring run, by the days it replaced (`record_days_from`),
- anything that rewrites a keyed table wholesale (`record_whole`: a migration, a new timezone).

`catch_up` brings the standby (generation g-1) to the published file (generation g) in one
transaction: a keyed table gets its journaled keys' rows deleted and inserted again from the
published file; every other table (small ones, or one this module does not know) is copied
whole, so nothing is ever skipped silently. After it, the row count of every table must equal
the published one, else the catch-up is rolled back and the writer copies the file instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import duckdb

from pipelines.sql import run_sql_file

JOURNAL = "publish_journal"
GENERATION = "publish_generation"
PUBLISHED = "published"  # the catalog name of the published file while catching up

# The tables that grow with the history, and the column their writers journal changes by.
# Every other table is copied whole at each catch-up.
KEYED_TABLES: dict[str, str] = {
    "event_copies": "arrival_date",
    "quarantine": "arrival_date",
    "identities": "anonymous_id",
    "user_keys": "user_id",
    "sessions": "user_id",
    "users": "user_id",
    "cohort_user_days": "user_id",
    "cohort_members": "user_id",
    "cohort_user_periods": "user_id",
    "retention_users": "user_id",
    "funnel_user_attempts": "user_id",
    "dimension_user_days": "metric_date",
    # A scoring run replaces these from its first scored day on (assets/anomalies/assets.py).
    "anomalies": "metric_date",
    "anomaly_incidents": "metric_date",
    "anomaly_inputs": "metric_date",
    "anomaly_days": "metric_date",
}

# What an incremental mart update replaced: the scope its update model computes again, read
# from the changes it applied (mart_changes after $applied). Mirrors the update models:
# sessions_update.sql, cohort_user_days_update.sql, cohort_scope_update.sql (cohort_members,
# cohort_user_periods), retention_scope_update.sql and funnel_copies_update.sql redo the
# persons whose events changed, users_update.sql those whose events or sessions changed,
# dimension_user_days_update.sql the event dates that changed.
MART_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    # table: (the mart_changes column holding its keys, the sources of changes it redoes)
    "sessions": ("user_id", ("events",)),
    "users": ("user_id", ("events", "sessions")),
    "cohort_user_days": ("user_id", ("events",)),
    "cohort_members": ("user_id", ("events",)),
    "cohort_user_periods": ("user_id", ("events",)),
    "retention_users": ("user_id", ("events",)),
    "funnel_user_attempts": ("user_id", ("events",)),
    "dimension_user_days": ("event_date", ("events",)),
}


def begin_build(conn: duckdb.DuckDBPyConnection) -> int:
    """Make the file a new build: the generation after the one it holds, an empty journal.
    Returns the new generation."""
    run_sql_file(conn, "journal/tables.sql")
    held = conn.execute(f"select max(generation) from {GENERATION}").fetchall()[0][0]
    generation = (held or 0) + 1
    conn.execute(f"delete from {GENERATION}")
    conn.execute(f"insert into {GENERATION} values ($g)", {"g": generation})
    conn.execute(f"delete from {JOURNAL}")
    return generation


def record_load_day(conn: duckdb.DuckDBPyConnection, arrival_date: dt.date) -> None:
    """Journal what the load of one arrival day changed (sql/journal/load_day.sql); call it in
    the day's transaction, after its load and identity models."""
    if _journaling(conn):
        run_sql_file(conn, "journal/load_day.sql", {"arrival_date": arrival_date})


def record_load_days(conn: duckdb.DuckDBPyConnection, days: Sequence[dt.date]) -> None:
    """Journal what arrival days replaced together changed (sql/journal/load_days.sql); call it
    in their transaction, after sql/staging/append_days.sql."""
    if _journaling(conn):
        run_sql_file(conn, "journal/load_days.sql", {"days": list(days)})


def record_mart(
    conn: duckdb.DuckDBPyConnection, tables: Sequence[str], applied: int | None
) -> None:
    """Journal a mart refresh: its update replaced the keys of its pending changes (after
    change number `applied`); `applied` None: it was rebuilt in full. Call it before the
    applied changes are dropped."""
    if not _journaling(conn):
        return
    for table in tables:
        if applied is None or table not in MART_KEYS:
            record_whole(conn, table)
            continue
        changes_column, sources = MART_KEYS[table]
        conn.execute(
            f"insert into {JOURNAL} select distinct $table, $column, {changes_column}::varchar "
            "from mart_changes where change_no > $applied and list_contains($sources, source)",
            {"table": table, "column": KEYED_TABLES[table], "applied": applied, "sources": sources},
        )


def record_days_from(
    conn: duckdb.DuckDBPyConnection, tables: Sequence[str], first: dt.date
) -> None:
    """Journal the days of `tables` (keyed by `metric_date`) from `first` on that they hold now.
    A writer that replaces those days calls it before its delete and after its insert, so the
    days it removed and the days it wrote are both caught up."""
    if not _journaling(conn):
        return
    database = conn.execute("select current_database()").fetchall()[0][0]
    for table in tables:
        if not _has_table(conn, database, table):
            continue  # created by the writer after this call: its insert is journaled then
        conn.execute(
            f"insert into {JOURNAL} select distinct $table, 'metric_date', metric_date::varchar "
            f"from {_quote(table)} where metric_date >= $first",
            {"table": table, "first": first},
        )


def record_whole(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Journal that `table` was rewritten: the catch-up copies it whole."""
    if _journaling(conn):
        conn.execute(f"insert into {JOURNAL} values ($table, null, null)", {"table": table})


def generation(conn: duckdb.DuckDBPyConnection, database: str) -> int | None:
    """The publish generation a file holds (None: made before the journal existed)."""
    if not _has_table(conn, database, GENERATION):
        return None
    return conn.execute(
        f"select max(generation) from {_quote(database)}.main.{GENERATION}"
    ).fetchall()[0][0]


def catch_up(conn: duckdb.DuckDBPyConnection, published: Path) -> str | None:
    """Bring the file of `conn` (the standby) to the published file by its journal, in one
    transaction, and make it the next build (`begin_build`). Returns None when done, else
    why it could not (nothing changed then: the caller copies the published file)."""
    own = conn.execute("select current_database()").fetchall()[0][0]
    conn.execute(f"attach {_literal(str(published))} as {PUBLISHED} (read_only)")
    try:
        mine, theirs = generation(conn, own), generation(conn, PUBLISHED)
        if mine is None or theirs is None or theirs != mine + 1:
            return f"the standby is generation {mine}, the published file {theirs}"
        if _schema(conn, own) != _schema(conn, PUBLISHED):
            return "the published file has another schema (a migration or a new table)"
        conn.execute("begin transaction")
        try:
            for table in _tables(conn, PUBLISHED):
                if table not in (JOURNAL, GENERATION):
                    _apply(conn, table)
            differing = _differing_counts(conn, own)
            if differing:
                conn.execute("rollback")
                return f"after catching up, {differing} has other row counts than published"
            conn.execute(f"delete from {GENERATION}")
            conn.execute(f"insert into {GENERATION} values ($g)", {"g": theirs})
            begin_build(conn)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    finally:
        conn.execute(f"detach {PUBLISHED}")
    return None


def _apply(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Replace what the published file's journal says changed in `table`."""
    name, source = _quote(table), f"{PUBLISHED}.main.{_quote(table)}"
    column = KEYED_TABLES.get(table)
    entries = conn.execute(
        f"select count(*), count(*) filter (where key_column is null), "
        f"count(*) filter (where key_column is distinct from $column) "
        f"from {PUBLISHED}.main.{JOURNAL} where table_name = $table",
        {"table": table, "column": column},
    ).fetchall()[0]
    journaled, whole, other_keys = entries
    if column is None or whole or other_keys:
        conn.execute(f"delete from {name}")
        conn.execute(f"insert into {name} select * from {source}")
        return
    if not journaled:
        return  # a keyed table its build did not change
    key_type = _column_type(conn, table, column)
    conn.execute(
        f"create or replace temp table journal_keys as "
        f"select distinct cast(key_value as {key_type}) as k "
        f"from {PUBLISHED}.main.{JOURNAL} where table_name = $table",
        {"table": table},
    )
    key = _quote(column)
    conn.execute(f"delete from {name} where {key} in (select k from journal_keys)")
    conn.execute(
        f"insert into {name} select * from {source} where {key} in (select k from journal_keys)"
    )


def _differing_counts(conn: duckdb.DuckDBPyConnection, own: str) -> str | None:
    for table in _tables(conn, PUBLISHED):
        if table in (JOURNAL, GENERATION):
            continue
        counts = conn.execute(
            f"select (select count(*) from {_quote(own)}.main.{_quote(table)}), "
            f"(select count(*) from {PUBLISHED}.main.{_quote(table)})"
        ).fetchall()[0]
        if counts[0] != counts[1]:
            return table
    return None


def _schema(conn: duckdb.DuckDBPyConnection, database: str) -> list[tuple]:
    """Every table's and view's columns, the views' SQL, indexes, sequences and macros."""
    columns = conn.execute(
        "select table_name, column_index, column_name, data_type, is_nullable, column_default "
        "from duckdb_columns() where database_name = $db and schema_name = 'main' order by all",
        {"db": database},
    ).fetchall()
    others = conn.execute(
        "select 'view', view_name, sql from duckdb_views() "
        "where database_name = $db and schema_name = 'main' and not internal "
        "union all select 'index', index_name, sql from duckdb_indexes() where database_name = $db "
        "union all select 'sequence', sequence_name, null from duckdb_sequences() "
        "where database_name = $db "
        "union all select 'macro', function_name, macro_definition from duckdb_functions() "
        "where database_name = $db and not internal order by all",
        {"db": database},
    ).fetchall()
    return columns + others


def _tables(conn: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "select table_name from duckdb_tables() "
            "where database_name = $db and schema_name = 'main' order by 1",
            {"db": database},
        ).fetchall()
    ]


def _column_type(conn: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    return conn.execute(
        "select data_type from duckdb_columns() where database_name = $db "
        "and schema_name = 'main' and table_name = $table and column_name = $column",
        {"db": PUBLISHED, "table": table, "column": column},
    ).fetchall()[0][0]


def _journaling(conn: duckdb.DuckDBPyConnection) -> bool:
    """A build made by pipelines.warehouse journals; a scratch connection (tests, benchmarks,
    the as-of replay) has no journal and is never published."""
    database = conn.execute("select current_database()").fetchall()[0][0]
    return _has_table(conn, database, JOURNAL)


def _has_table(conn: duckdb.DuckDBPyConnection, database: str, table: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from duckdb_tables() where database_name = $db "
            "and schema_name = 'main' and table_name = $table",
            {"db": database, "table": table},
        ).fetchall()[0][0]
    )


def _quote(identifier: str) -> str:
    """A table or column name from the catalog as a SQL identifier (names vary per table:
    DuckDB cannot bind them as parameters)."""
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
