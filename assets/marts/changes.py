"""Marts that update instead of rebuilding: sessions, users, daily_metrics, cohorts, retention
and the funnels.

Every load records in `mart_changes` the (person, event date) pairs whose events it changed
(sql/staging/record_changes.sql), numbered by load. Each of these marts remembers in
`mart_state` the last change number it applied and the fingerprint (model SQL and settings) it
was built with. `refresh_mart` then runs the mart's update models over the pending changes, or
its full-rebuild models (the reference the updates must equal) when there is no prior state,
when the SQL or the settings changed, or when a mart it is built from was rebuilt in full.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from pipelines import journal
from pipelines.sql import model_files, run_sql_file, sql_text
from pipelines.warehouse import prepare_base_schema

# Which marts are built from which (directly or not): a full rebuild of one makes those after
# it rebuild in full too, since its update recorded no changed days.
BUILT_FROM: dict[str, tuple[str, ...]] = {
    "sessions": (),
    "users": ("sessions",),
    "daily_metrics": ("sessions", "users"),
    "cohorts": ("sessions", "users"),
    "funnels": (),
    "retention": ("users",),
}


@dataclass(frozen=True)
class MartModels:
    """The SQL models of one mart: `full` rebuilds it from every event, `update` applies the
    changes after $applied (and records its own under $change_no); `tables` are what they
    write, all needed for an update."""

    mart: str
    full: tuple[str, ...]
    update: tuple[str, ...]
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Refresh:
    """How a mart was brought up to date."""

    mode: str  # "full" or "incremental"
    changed_pairs: int  # pending (person, day) pairs from loads it applied

    def metadata(self) -> dict[str, Any]:
        return {"refresh": self.mode, "changed_user_days": self.changed_pairs}


def refresh_mart(
    conn: duckdb.DuckDBPyConnection,
    models: MartModels,
    params: Mapping[str, Any],
    full: bool = False,
    run: Callable[[duckdb.DuckDBPyConnection, int | None], None] | None = None,
) -> Refresh:
    """Bring one mart up to date in one transaction: update it from the pending changes, or
    rebuild it (always when `full`). `run(conn, applied)` replaces running the models in order,
    for a mart whose models run per item (applied: None for the full rebuild)."""
    fingerprint = model_fingerprint(models, params)
    prepare_base_schema(conn)  # mart_changes and mart_state, in a warehouse of any age
    conn.execute("begin transaction")
    try:
        applied = _applied_change(conn, models, fingerprint)
        pending = _pending_pairs(conn, applied)
        change_no = _next_change_no(conn)
        if full or applied is None:
            if run is not None:
                run(conn, None)
            else:
                for name in models.full:
                    run_sql_file(conn, name, dict(params))
            _forget_state(conn, _built_from(models.mart))
            refresh = Refresh("full", pending)
        else:
            if run is not None:
                run(conn, applied)
            else:
                for name in models.update:
                    run_sql_file(conn, name, {**params, "applied": applied, "change_no": change_no})
            refresh = Refresh("incremental", pending)
        journal.record_mart(conn, models.tables, None if refresh.mode == "full" else applied)
        _remember(conn, models.mart, change_no, fingerprint)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return refresh


def model_fingerprint(models: MartModels, params: Mapping[str, Any]) -> str:
    """A hash of the mart's SQL (with what it needs) and settings: an update is only valid on
    a table built by the same code with the same settings."""
    digest = hashlib.sha256()
    files = {file for name in models.full + models.update for file in model_files(name)}
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(sql_text(name).encode())
    digest.update(json.dumps(dict(params), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _applied_change(
    conn: duckdb.DuckDBPyConnection, models: MartModels, fingerprint: str
) -> int | None:
    """The change number the mart applied, or None when it must be rebuilt."""
    state = conn.execute(
        "select applied_change_no, fingerprint from mart_state where mart = $mart",
        {"mart": models.mart},
    ).fetchall()
    if not state or state[0][1] != fingerprint:
        return None
    existing = conn.execute(
        "select count(*) from duckdb_tables() "
        "where database_name = current_database() and schema_name = 'main' "
        "and not temporary and table_name in (select unnest($tables))",
        {"tables": list(models.tables)},
    ).fetchall()[0][0]
    return state[0][0] if existing == len(models.tables) else None


def _pending_pairs(conn: duckdb.DuckDBPyConnection, applied: int | None) -> int:
    return conn.execute(
        "select count(*) from (select distinct user_id, event_date from mart_changes "
        "where source = 'events' and change_no > $applied)",
        {"applied": applied if applied is not None else -1},
    ).fetchall()[0][0]


def _next_change_no(conn: duckdb.DuckDBPyConnection) -> int:
    """Above every number recorded or applied: an update files the days it changed under it."""
    run_sql_file(conn, "macros/change_numbers.sql")
    return conn.execute("select next_change_no()").fetchall()[0][0]


def _built_from(mart: str) -> list[str]:
    return [other for other, sources in BUILT_FROM.items() if mart in sources]


def _forget_state(conn: duckdb.DuckDBPyConnection, marts: Sequence[str]) -> None:
    if marts:
        conn.execute(
            "delete from mart_state where mart in (select unnest($marts))", {"marts": marts}
        )


def _remember(conn: duckdb.DuckDBPyConnection, mart: str, change_no: int, fingerprint: str) -> None:
    """Record what the mart applied; drop the changes every mart has applied."""
    conn.execute("delete from mart_state where mart = $mart", {"mart": mart})
    conn.execute(
        "insert into mart_state values ($mart, $change_no, $fingerprint)",
        {"mart": mart, "change_no": change_no, "fingerprint": fingerprint},
    )
    conn.execute(
        """
        delete from mart_changes
        where change_no <= (
            select min(applied_change_no) from mart_state where mart in (select unnest($marts))
        )
        and (select count(*) from mart_state where mart in (select unnest($marts))) = $count
        """,
        {"marts": list(BUILT_FROM), "count": len(BUILT_FROM)},
    )
