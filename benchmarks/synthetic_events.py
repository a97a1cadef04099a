"""Synthetic events for the mart and funnel benchmarks, generated in DuckDB with SQL.

Events over 90 days from 2026-01-01: users arrive over the period (with growth) and visit in
sessions of about six events within 25 minutes; heavy users have more sessions and visits decay
after arrival. Half of all events are page views and a third are noise (search, click, scroll);
signups, add-to-carts and purchases (with revenue) come only from the more engaged users, so the
checkout funnel drops off step by step. Platforms and channels are per user, with some events
on another platform or none. The same (events, users) always gives the same events.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.sql import run_sql, run_sql_file

SIZES = ((1_000_000, 50_000), (10_000_000, 500_000))  # (events, users)
DAYS = 90
START_DAY = dt.date(2026, 1, 1)

# Deterministic pseudo-random numbers from hashes (`random()` is not reproducible across
# threads): u(i, k) is uniform in [0, 1).
GENERATE_EVENTS = """
create or replace temp macro u(i, k) as (hash(i, k) % 1000003) / 1000003.0;

create or replace temp table bench_events as
with raw as (
    select
        i,
        (hash(i, 1) % ($events // 6))::bigint as sid,
        u(i, 3) as r_offset,
        u(i, 5) as r_event,
        u(i, 6) as r_revenue,
        u(i, 8) as r_platform
    from range($events) as t(i)
),
by_user as (
    select *, floor($users * pow(u(sid, 1), 1.5))::bigint as uid from raw
),
timed as (
    select
        *,
        u(uid, 20) as engagement,
        floor($days * sqrt(u(uid, 7)))::integer as arrival_day,
        ['web', 'ios', 'android'][1 + (hash(uid, 11) % 3)::integer] as home_platform,
        ['organic', 'ads', 'email', 'referral'][1 + (hash(uid, 12) % 4)::integer]
            as home_channel
    from by_user
),
placed as (
    select
        *,
        arrival_day + floor(pow(u(sid, 2), 3) * ($days - arrival_day))::integer as day_index
    from timed
)
select
    lpad(to_hex(hash(i, 99)), 16, '0') || '-' || i as event_id,
    'u' || uid as user_id,
    case
        when r_event < 0.50 then 'page_view'
        when r_event < 0.65 then 'search'
        when r_event < 0.77 then 'click'
        when r_event < 0.85 then 'scroll'
        when r_event < 0.88 then if(engagement < 0.6, 'signup', 'page_view')
        when r_event < 0.95 then if(engagement < 0.4, 'add_to_cart', 'click')
        else if(engagement < 0.25, 'purchase', 'scroll')
    end as event,
    $start::timestamp
        + to_days(day_index)
        + to_seconds(floor(u(sid, 4) * 86400)::integer)
        + to_seconds(floor(r_offset * 1500)::integer) as ts,
    ts::date as event_date,
    case
        when r_platform < 0.01 then null
        when r_platform < 0.1 then 'web'
        else home_platform
    end as platform,
    home_channel as channel,
    case when home_channel = 'ads' then 'spring' end as campaign,
    'NL' as country,
    case when event = 'purchase' then round(5 + r_revenue * 95, 2) end as revenue,
    '{}'::json as properties,
    ts::date as arrival_date,
    'bench.jsonl' as source_file,
    i as line_no
from placed;
"""


def generate_events(conn: duckdb.DuckDBPyConnection, n_events: int, n_users: int) -> float:
    """Fill the project's `events` (through its staging DDL) with synthetic events; returns the
    seconds it took."""
    started = time.perf_counter()
    run_sql_file(conn, "staging/tables.sql")
    run_sql(
        conn,
        GENERATE_EVENTS,
        {"events": n_events, "users": n_users, "days": DAYS, "start": START_DAY},
    )
    run_sql_file(conn, "staging/store_clean_events.sql", {"staged": "bench_events"})
    conn.execute("drop table bench_events")
    conn.execute("checkpoint")
    return time.perf_counter() - started


def synthetic_warehouses(
    name: str,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, int, int, float]]:
    """For each benchmark size, a fresh file warehouse holding the synthetic events:
    (connection, events, users, seconds it took to generate them). The file is removed after
    the caller's turn."""
    with tempfile.TemporaryDirectory(prefix=f"eventpulse-{name}-") as folder:
        for n_events, n_users in SIZES:
            path = Path(folder) / f"bench-{n_events}.duckdb"
            conn = warehouse.connect(path)
            try:
                yield conn, n_events, n_users, generate_events(conn, n_events, n_users)
            finally:
                conn.close()
            path.unlink()
