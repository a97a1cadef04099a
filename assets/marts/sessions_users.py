"""Stage: sessions and users. `events` -> `sessions` -> `users` (CONTRACT §3).

`build_sessions` and `build_users` run the SQL models and are what the CLI and the tests call;
the assets wrap them for Dagster.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from assets.marts.changes import MartModels, Refresh, refresh_mart
from pipelines.previews import markdown_table
from pipelines.resources import Warehouse
from pipelines.settings import Settings
from pipelines.warehouse import WRITER_ASSET

SESSIONS = MartModels(
    "sessions", ("marts/sessions.sql",), ("marts/sessions_update.sql",), ("sessions",)
)
USERS = MartModels("users", ("marts/users.sql",), ("marts/users_update.sql",), ("users",))


def build_sessions(conn: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Rebuild `sessions` from `events` (the reference); returns its row count."""
    refresh_mart(conn, SESSIONS, _session_params(settings), full=True)
    return conn.execute("select count(*) from sessions").fetchall()[0][0]


def update_sessions(conn: duckdb.DuckDBPyConnection, settings: Settings) -> Refresh:
    """Bring `sessions` up to date: only the sessions of the users whose events changed since
    the last build, from their first changed day on (a rebuild when there is no prior state)."""
    return refresh_mart(conn, SESSIONS, _session_params(settings))


def build_users(conn: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Rebuild `users` from `events` and `sessions` (build sessions first); returns its row
    count."""
    refresh_mart(conn, USERS, _user_params(settings), full=True)
    return conn.execute("select count(*) from users").fetchall()[0][0]


def update_users(conn: duckdb.DuckDBPyConnection, settings: Settings) -> Refresh:
    """Bring `users` up to date (update sessions first): only the rows of the users whose
    events or sessions changed."""
    return refresh_mart(conn, USERS, _user_params(settings))


def _session_params(settings: Settings) -> dict:
    return {"session_gap_seconds": settings.session_gap_seconds, "timezone": settings.timezone}


def _user_params(settings: Settings) -> dict:
    return {"conversion_event": settings.conversion_event}


@dg.asset(group_name="marts", kinds={"duckdb"}, deps=["events"], **WRITER_ASSET)
def sessions(warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per session: a gap longer than `session_gap_seconds` (default 1800) between a
    user's events starts a new one; platform and channel of the session's first event
    (CONTRACT §3 sessions)."""
    with warehouse.writer() as conn:
        refresh = update_sessions(conn, warehouse.settings())
        rows = conn.execute("select count(*) from sessions").fetchall()[0][0]
        stats = conn.execute(
            """
            select
                coalesce(median(duration_seconds), 0),
                coalesce(avg(events), 0),
                count(distinct user_id)
            from sessions
            """
        ).fetchall()[0]
        preview = conn.sql(
            """
            select session_id, user_id, strftime(started_at, '%Y-%m-%d %H:%M:%S') as started_at,
                round(duration_seconds) as duration_seconds, events, platform, channel
            from sessions order by sessions.started_at desc, session_id limit 10
            """
        ).pl()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **refresh.metadata(),
            "median_duration_seconds": float(stats[0]),
            "avg_events_per_session": float(stats[1]),
            "users": stats[2],
            "preview": dg.MetadataValue.md(markdown_table(preview)),
        }
    )


@dg.asset(group_name="marts", kinds={"duckdb"}, deps=["events", sessions], **WRITER_ASSET)
def users(warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per user: first and last seen, acquisition platform/channel/campaign (of the first
    event), events, sessions, purchases (conversion events) and revenue (CONTRACT §3 users)."""
    with warehouse.writer() as conn:
        refresh = update_users(conn, warehouse.settings())
        rows = conn.execute("select count(*) from users").fetchall()[0][0]
        by_platform = conn.sql(
            """
            select acquisition_platform, count(*) as users, sum(purchases > 0) as purchasers,
                round(sum(revenue), 2) as revenue
            from users group by all order by users desc
            """
        ).pl()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **refresh.metadata(),
            "preview": dg.MetadataValue.md(markdown_table(by_platform)),
        }
    )
