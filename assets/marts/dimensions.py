"""Breakdown dimensions (CONTRACT §1 `dimensions`, `dimension_limit`; §3 Breakdowns).

The configured dimensions go into SQL as data: `dimension_specs` turns each name into
{dimension, key, path}, read by sql/macros/filter_value.sql (a lifted column by its name, a
`properties.<key>` by its JSON pointer). `refresh_dimension_values` keeps the extra table
`dimension_values` (each dimension's kept values) current: every mart with segments reads that
one table, so daily_metrics, funnel_steps, cohorts and anomalies agree on what is 'other'. It is
counted from the internal `dimension_user_days` (one row per day, user and combination of
values), which the same refresh keeps current from the loads' recorded changes (the changed days
only) and which daily_metrics then counts its segments from: events are grouped once, not once
for the kept values and again for the metrics.

Incremental marts and the kept set: a changed kept set changes the segment of old events, so
`kept_fingerprint` goes into the fingerprint of the marts that update (daily_metrics, cohorts),
and a change forces their full rebuild (the simplest rule that keeps updates equal to a
rebuild). While a dimension has no more values than the limit, every value is kept and a new
value changes no earlier row, so only dimensions with values folded into 'other' count.
"""

from __future__ import annotations

import duckdb

from assets.marts.changes import MartModels, model_fingerprint, refresh_mart
from pipelines.settings import PROPERTY_DIMENSION_PREFIX, Settings
from pipelines.warehouse import prepare_base_schema

# The first event's fields that `sessions` keeps (sql/macros/sessionize.sql); a dimension on
# another field reads the session's first event (session_fields in sql/macros/segments.sql).
SESSION_FIELDS = ("platform", "channel", "campaign")

DIMENSION_VALUES = MartModels(
    "dimension_values",
    ("intermediate/dimension_user_days.sql", "marts/dimension_values.sql"),
    ("intermediate/dimension_user_days_update.sql", "marts/dimension_values.sql"),
    ("dimension_user_days", "dimension_values"),
)


def dimension_specs(settings: Settings) -> list[dict]:
    """The configured dimensions as the SQL reads them, in their configured order."""
    return [_spec(name) for name in settings.dimensions]


def refresh_dimension_values(
    conn: duckdb.DuckDBPyConnection, settings: Settings, full: bool = False
) -> bool:
    """Bring `dimension_user_days` and `dimension_values` up to date unless they are current
    (same settings, no event changed since): the changed days only, or everything from all
    events when `full` or when there is no prior state; returns whether anything was done."""
    params = dimension_params(settings)
    if not full and _is_current(conn, params):
        return False
    refresh_mart(conn, DIMENSION_VALUES, params, full=full)
    return True


def dimension_params(settings: Settings) -> dict:
    # The zone too: dimension_user_days is by event_date, which a new zone redates (without
    # recording changes), so it must then be rebuilt.
    return {
        "dimensions": dimension_specs(settings),
        "dimension_limit": settings.dimension_limit,
        "conversion_event": settings.conversion_event,
        "timezone": settings.timezone,
    }


def kept_fingerprint(conn: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The kept values of each dimension that folds some value into 'other' (read from a
    current `dimension_values`): what a segment row of an earlier day depends on."""
    rows = conn.execute(
        "select dimension, list(value order by value) from dimension_values "
        "where values_seen > (select count(*) from dimension_values as d "
        "where d.dimension = dimension_values.dimension) group by dimension order by dimension"
    ).fetchall()
    return dict(rows)


def segment_params(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """The parameters a mart with segments is built with: the dimensions (bound in its SQL)
    and the kept values (only in its fingerprint), after bringing `dimension_values` up to
    date."""
    refresh_dimension_values(conn, settings)
    return {"dimensions": dimension_specs(settings), "kept_values": kept_fingerprint(conn)}


def needs_event_fields(settings: Settings, held: tuple[str, ...] = SESSION_FIELDS) -> bool:
    """Whether some dimension reads a field that `held` (the fields a mart's rows keep of
    their first or entry event) does not have, so the event itself must be looked up."""
    return any(name not in held for name in settings.dimensions)


def _spec(name: str) -> dict:
    if name.startswith(PROPERTY_DIMENSION_PREFIX):
        key = name[len(PROPERTY_DIMENSION_PREFIX) :]
        # The whole name as the key: filter_value reads it from `properties` (even
        # `properties.platform`, which is not the lifted column). A JSON pointer (RFC 6901,
        # `~` and `/` escaped) reads any key literally.
        return {"dimension": name, "key": name, "path": "/" + _escape(key)}
    return {"dimension": name, "key": name, "path": None}


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _is_current(conn: duckdb.DuckDBPyConnection, params: dict) -> bool:
    prepare_base_schema(conn)  # mart_changes and mart_state, in a warehouse of any age
    state = conn.execute(
        "select applied_change_no, fingerprint from mart_state where mart = 'dimension_values'"
    ).fetchall()
    if not state or state[0][1] != model_fingerprint(DIMENSION_VALUES, params):
        return False
    if not all(_has_table(conn, table) for table in DIMENSION_VALUES.tables):
        return False
    pending = conn.execute(
        "select count(*) from mart_changes where source = 'events' and change_no > $applied",
        {"applied": state[0][0]},
    ).fetchall()[0][0]
    return pending == 0


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'main' and not temporary and table_name = $name",
            {"name": name},
        ).fetchall()[0][0]
    )
