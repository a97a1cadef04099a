"""Stage: daily metrics. `events`, `users`, `sessions` -> `daily_metrics` (CONTRACT §3).

`build_daily_metrics` runs the SQL model and is what the CLI and the tests call; the asset and
its check wrap it for Dagster.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from assets.marts.changes import MartModels, Refresh, refresh_mart
from assets.marts.dimensions import (
    needs_event_fields,
    refresh_dimension_values,
    segment_params,
)
from pipelines.previews import markdown_table
from pipelines.resources import Warehouse
from pipelines.settings import Settings
from pipelines.warehouse import WRITER_ASSET

DAILY_METRICS = MartModels(
    "daily_metrics",
    ("marts/daily_metrics.sql",),
    ("marts/daily_metrics_update.sql",),
    ("daily_metrics",),
)


def build_daily_metrics(conn: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Rebuild `daily_metrics` (the reference; needs `users` and `sessions`) and the
    `dimension_user_days` it counts from; returns its row count."""
    refresh_dimension_values(conn, settings, full=True)
    refresh_mart(conn, DAILY_METRICS, _params(conn, settings), full=True)
    return conn.execute("select count(*) from daily_metrics").fetchall()[0][0]


def update_daily_metrics(conn: duckdb.DuckDBPyConnection, settings: Settings) -> Refresh:
    """Bring `daily_metrics` up to date (update users and sessions first): only the days whose
    events, new users or sessions changed, and the days the event range gained or lost."""
    return refresh_mart(conn, DAILY_METRICS, _params(conn, settings))


def _params(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    return {
        "conversion_event": settings.conversion_event,
        "timezone": settings.timezone,
        **segment_params(conn, settings),
        "session_event_fields": needs_event_fields(settings),
    }


def active_user_mismatches(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Days whose ('all', 'all') active_users differ from the distinct users in `events` that
    day, or that miss their row: (day, active_users in the mart, distinct users in events)."""
    return conn.execute(
        """
        with expected as (
            select event_date as metric_date, count(distinct user_id) as users
            from events group by event_date
        ),
        reported as (
            select metric_date, active_users
            from daily_metrics where dimension = 'all' and segment = 'all'
        )
        select metric_date, r.active_users, coalesce(e.users, 0)
        from reported as r
        full join expected as e using (metric_date)
        where r.active_users is distinct from coalesce(e.users, 0)
        order by metric_date
        """
    ).fetchall()


@dg.asset(
    group_name="marts", kinds={"duckdb"}, deps=["events", "users", "sessions"], **WRITER_ASSET
)
def daily_metrics(warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per day and segment (all / each configured dimension's values): active and new users, sessions,
    events, purchasers, revenue and conversion rate; every day of the range has an
    ('all', 'all') row, zeros included (CONTRACT §3 daily_metrics)."""
    with warehouse.writer() as conn:
        refresh = update_daily_metrics(conn, warehouse.settings())
        rows = conn.execute("select count(*) from daily_metrics").fetchall()[0][0]
        latest = conn.sql(
            """
            select metric_date, active_users, new_users, sessions, events, purchasers,
                round(revenue, 2) as revenue, round(100 * conversion_rate, 2) as conversion_pct
            from daily_metrics where dimension = 'all'
            order by metric_date desc limit 7
            """
        ).pl()
        days = conn.execute(
            "select count(*) from daily_metrics where dimension = 'all'"
        ).fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **refresh.metadata(),
            "days": days,
            "preview": dg.MetadataValue.md(markdown_table(latest)),
        }
    )


@dg.asset_check(asset=daily_metrics, blocking=True)
def active_users_match_events(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every day's ('all', 'all') active_users equals the distinct users in `events` that day."""
    with warehouse.reader() as conn:
        mismatches = active_user_mismatches(conn)
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={
            "mismatched_days": len(mismatches),
            "examples": dg.MetadataValue.json(
                [
                    {"metric_date": str(day), "active_users": reported, "events_users": users}
                    for day, reported, users in mismatches[:10]
                ]
            ),
        },
    )
