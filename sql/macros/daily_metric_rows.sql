-- sql/macros/daily_metric_rows.sql: the rows of daily_metrics (CONTRACT §3) for the days of the
-- relations named `scoped_events` (events), `scoped_users` (users, by first_seen_date),
-- `scoped_sessions` (sessions, by start day) and `scoped_days` (metric_date: the days that get
-- an ('all', 'all') row), each holding every row of the days it covers: daily_metrics.sql
-- passes everything, daily_metrics_update.sql the changed days.
-- Activity, events, purchasers and revenue use each event's own platform/channel; new users
-- use their first event's (users.acquisition_*); sessions use their first event's
-- (sessions.platform/channel). A NULL platform or channel is counted in the segment 'unknown',
-- so segment rows always add up to the 'all' row. Segment rows exist for (day, segment) pairs
-- with at least one event.
-- needs: macros/segments.sql
-- needs: macros/local_time.sql
create or replace temp macro daily_metric_rows(
    scoped_events, scoped_users, scoped_sessions, scoped_days, conversion_event, zone
) as table
with user_days as (
    -- Shrink events once to one row per day, user, platform and channel; the three dimensions
    -- are then counted from this much smaller set.
    select
        event_date as metric_date,
        user_id,
        coalesce(platform, 'unknown') as platform,
        coalesce(channel, 'unknown') as channel,
        count(*) as events,
        -- DECIMAL: a parallel sum of doubles is not deterministic in its last bits.
        sum(revenue::decimal(38, 9)) as revenue,
        bool_or(event = conversion_event) as purchased
    from query_table(scoped_events)
    group by all
),
user_segments as (
    -- One row per day, user and segment of each dimension ('all' included).
    select
        metric_date,
        user_id,
        segment_dimension(grouping(platform) = 0, grouping(channel) = 0) as dimension,
        -- The column not grouped on is NULL, and platform/channel are never NULL here.
        coalesce(platform, channel, 'all') as segment,
        sum(events) as events,
        sum(revenue) as revenue,
        bool_or(purchased) as purchased
    from user_days
    group by grouping sets (
        (metric_date, user_id), (metric_date, user_id, platform), (metric_date, user_id, channel)
    )
),
activity as (
    select
        metric_date,
        dimension,
        segment,
        count(*) as active_users,
        count(*) filter (where purchased) as purchasers,
        sum(events) as events,
        sum(revenue) as revenue
    from user_segments
    group by metric_date, dimension, segment
),
new_users as (
    select
        first_seen_date as metric_date,
        segment_dimension(grouping(platform) = 0, grouping(channel) = 0) as dimension,
        coalesce(platform, channel, 'all') as segment,
        count(*) as new_users
    from (
        select
            first_seen_date,
            coalesce(acquisition_platform, 'unknown') as platform,
            coalesce(acquisition_channel, 'unknown') as channel
        from query_table(scoped_users)
    )
    group by grouping sets (
        (first_seen_date), (first_seen_date, platform), (first_seen_date, channel)
    )
),
session_starts as (
    select
        metric_date,
        segment_dimension(grouping(platform) = 0, grouping(channel) = 0) as dimension,
        coalesce(platform, channel, 'all') as segment,
        count(*) as sessions
    from (
        select
            local_date(started_at, zone) as metric_date,
            coalesce(platform, 'unknown') as platform,
            coalesce(channel, 'unknown') as channel
        from query_table(scoped_sessions)
    )
    group by grouping sets ((metric_date), (metric_date, platform), (metric_date, channel))
),
all_days as (
    -- The ('all', 'all') row of every day asked for, even a day without events.
    select metric_date, 'all' as dimension, 'all' as segment
    from query_table(scoped_days)
),
combined as (
    select * from activity
    union all by name select * from new_users
    union all by name select * from session_starts
    union all by name select * from all_days
)
select
    metric_date,
    dimension,
    segment,
    coalesce(sum(active_users), 0)::bigint as active_users,
    coalesce(sum(new_users), 0)::bigint as new_users,
    coalesce(sum(sessions), 0)::bigint as sessions,
    coalesce(sum(events), 0)::bigint as events,
    coalesce(sum(purchasers), 0)::bigint as purchasers,
    coalesce(sum(revenue), 0)::double as revenue,
    -- purchasers / active_users; 0 on a day without active users rather than NULL.
    coalesce(sum(purchasers) / nullif(sum(active_users), 0), 0)::double as conversion_rate
from combined
group by metric_date, dimension, segment;
