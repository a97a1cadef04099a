"""Stage: acquisition cohorts. `events`, `users` -> `cohorts` (CONTRACT §3).

`build_cohorts` runs the SQL model and is what the CLI and the tests call; the asset and its
check wrap it for Dagster.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from assets.marts.changes import MartModels, Refresh, refresh_mart
from assets.marts.dimensions import needs_event_fields, segment_params
from pipelines.previews import markdown_table
from pipelines.resources import Warehouse
from pipelines.settings import DEFAULT_DIMENSIONS, Settings
from pipelines.warehouse import WRITER_ASSET

COHORTS = MartModels(
    "cohorts",
    (
        "intermediate/cohort_user_days.sql",
        "intermediate/cohort_scope.sql",
        "intermediate/cohort_user_rows.sql",
        "intermediate/cohort_cells.sql",
        "marts/cohorts.sql",
    ),
    (
        "intermediate/cohort_user_days_update.sql",
        "intermediate/cohort_scope_update.sql",
        "intermediate/cohort_user_rows.sql",
        "intermediate/cohort_cells_update.sql",
        "marts/cohorts.sql",
    ),
    (
        "cohort_user_days",
        "cohort_members",
        "cohort_user_periods",
        "cohort_cells",
        "cohort_segment_sizes",
        "cohort_segment_values",
        "cohorts",
    ),
)


def build_cohorts(conn: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> int:
    """Rebuild `cohorts` (the reference; needs `users`; the default settings
    when none are given); returns its row count."""
    refresh_mart(conn, COHORTS, _params(conn, settings), full=True)
    return conn.execute("select count(*) from cohorts").fetchall()[0][0]


def update_cohorts(conn: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> Refresh:
    """Bring `cohorts` up to date (update users first): each user's revenue per day is updated
    for the changed (user, day) pairs only; the changed persons' cohort, segments and periods
    are taken out of the kept cells and counted in again (sql/intermediate/cohort_cells_update.sql),
    and the cohort table is written from those cells (no event is read again)."""
    params = _params(conn, settings)
    return refresh_mart(conn, COHORTS, params, full=_segments_respelt(conn))


def _params(conn: duckdb.DuckDBPyConnection, settings: Settings | None) -> dict:
    settings = settings or Settings(home=Path("."))
    return {
        **segment_params(conn, settings),
        "session_event_fields": needs_event_fields(settings),
    }


def _segments_respelt(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether a value the kept cells were counted with is now spelt otherwise (dimension_values
    against cohort_segment_values, which the cells' build remembers): the members' segments
    would change, so the cells are rebuilt. A dimension that folds values into 'other'
    rebuilds on any change of its kept set already (kept_values in the fingerprint); a new
    value, or one nobody has any more, changes no other member's segment."""
    found = conn.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'main' and table_name = 'cohort_segment_values'"
    ).fetchall()[0][0]
    if not found:
        return False  # no cells yet, or from before: the models' state decides
    return bool(
        conn.execute(
            "select count(*) from cohort_segment_values as s "
            "join dimension_values as d on d.dimension = s.dimension and d.key = s.key "
            "where d.value <> s.value"
        ).fetchall()[0][0]
    )


def cohort_size_mismatches(
    conn: duckdb.DuckDBPyConnection, dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
) -> list[tuple]:
    """(granularity, dimension, users in its cohorts, rows in `users`) where a granularity and
    dimension's cohorts do not add up to every user exactly once."""
    return conn.execute(
        """
        with sizes as (
            -- cohort_users repeats on every period row: one value per cohort and segment.
            select cohort_granularity, dimension, cohort_start, segment,
                any_value(cohort_users) as cohort_users
            from cohorts
            group by all
        ),
        totals as (
            select cohort_granularity, dimension, sum(cohort_users)::bigint as users
            from sizes group by all
        ),
        expected as (
            select g.cohort_granularity, d.dimension, (select count(*) from users) as users
            from (values ('week'), ('month')) as g(cohort_granularity)
            cross join (select unnest(list_concat(['all'], $dimensions::varchar[])) as dimension) as d
            where exists (select 1 from users)
        )
        select cohort_granularity, dimension, coalesce(t.users, 0), e.users
        from expected as e
        left join totals as t using (cohort_granularity, dimension)
        where coalesce(t.users, 0) <> e.users
        order by all
        """,
        {"dimensions": list(dimensions)},
    ).fetchall()


@dg.asset(group_name="marts", kinds={"duckdb"}, deps=["events", "users"], **WRITER_ASSET)
def cohorts(warehouse: Warehouse) -> dg.MaterializeResult:
    """Weekly and monthly acquisition cohorts by all / each configured dimension's acquisition
    value: active users, retention and churn rate, revenue, cumulative revenue and LTV per
    period 0..12 (CONTRACT §3 cohorts)."""
    with warehouse.writer() as conn:
        refresh = update_cohorts(conn, warehouse.settings())
        rows = conn.execute("select count(*) from cohorts").fetchall()[0][0]
        latest = conn.sql(
            """
            select cohort_start, cohort_users,
                max(period_index) as weeks_observed,
                round(100 * arg_max(retention_rate, period_index), 1) as last_retention_pct,
                round(max(cumulative_revenue), 2) as cumulative_revenue,
                round(arg_max(ltv, period_index), 2) as ltv
            from cohorts
            -- Ended weeks only: a week still running is no value to show (is_complete).
            where cohort_granularity = 'week' and dimension = 'all' and is_complete
            group by cohort_start, cohort_users
            order by cohort_start desc limit 12
            """
        ).pl()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **refresh.metadata(),
            "preview": dg.MetadataValue.md(markdown_table(latest)),
        }
    )


@dg.asset_check(asset=cohorts, blocking=True)
def cohort_sizes_sum_to_users(warehouse: Warehouse) -> dg.AssetCheckResult:
    """For each granularity and dimension, the cohort sizes add up to the number of users."""
    with warehouse.reader() as conn:
        mismatches = cohort_size_mismatches(conn, warehouse.settings().dimensions)
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={
            "mismatches": len(mismatches),
            "examples": dg.MetadataValue.json(
                [
                    {"granularity": g, "dimension": d, "cohort_users": n, "users": u}
                    for g, d, n, u in mismatches[:10]
                ]
            ),
        },
    )
