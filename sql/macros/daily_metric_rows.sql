-- sql/macros/daily_metric_rows.sql: the rows of daily_metrics (CONTRACT §3) for the days of the
-- relations named `scoped_user_days` (dimension_user_days: events grouped per day, user and
-- combination of dimension values), `scoped_users` (users, by first_seen_date),
-- `scoped_sessions` (sessions, by start day) and `scoped_days` (metric_date: the days that get
-- an ('all', 'all') row), each holding every row of the days it covers: daily_metrics.sql
-- passes everything, daily_metrics_update.sql the changed days.
-- Segments (CONTRACT §3 Breakdowns): activity, events, purchasers and revenue use each event's
-- own value of each dimension, so a user with events of two values on one day is active in
-- both segments; new users use their first event's (the first event of their first session);
-- sessions their first event's. Missing or empty is 'unknown', a value not kept in
-- dimension_values is 'other'; a user is counted once per segment, so 'other' rows count
-- distinct users too. Segment rows exist for (day, segment) pairs with at least one event.
-- `dims` is the list of dimension specs (macros/segments.sql); `scoped_sessions` has the
-- sessions' first-event columns platform, channel, campaign, country and properties
-- (session_fields in macros/segments.sql). `zone`: the project time zone that sessions' start
-- days are cut in.
-- needs: macros/segments.sql
-- needs: macros/local_time.sql

-- Dimension number k of the relation named `user_days` (daily_metric_rows below): one row per
-- day and segment. Rows are grouped per user and segment first, so a user with several values
-- of one segment that day (two values folded into 'other') is one active user there. A
-- dimension number past the configured ones has no row in `value_segments`, so no rows.
-- Grouping one dimension at a time is several times faster than one grouping of every
-- dimension's (unnested) rows: each hash table holds one dimension's groups.
create or replace temp macro dimension_activity(user_days, value_segments, k) as table
select
    metric_date,
    k as dimension_no,
    segment,
    count(*) as active_users,
    count(*) filter (where purchased) as purchasers,
    sum(events) as events,
    sum(revenue) as revenue
from (
    select
        u.metric_date,
        u.user_id,
        s.segment,
        sum(u.events) as events,
        sum(u.revenue) as revenue,
        bool_or(u.purchased) as purchased
    from query_table(user_days) as u
    join query_table(value_segments) as s
        on s.dimension_no = k
        and s.value = coalesce(
            slot_value(
                k,
                u.value_1, u.value_2, u.value_3, u.value_4,
                u.value_5, u.value_6, u.value_7, u.value_8
            ),
            ''
        )
    group by u.metric_date, u.user_id, s.segment
)
group by metric_date, segment;

create or replace temp macro daily_metric_rows(
    scoped_user_days, scoped_users, scoped_sessions, scoped_days, dims, zone
) as table
with session_days as materialized (
    -- Sessions started per day and combination of values of their first event; `is_first`
    -- marks users' first sessions (starting at first_seen_at), whose first event is the user's
    -- first: they count the new users. A session is counted once in each dimension, so no
    -- per-user grouping is needed.
    select
        local_date(s.started_at, zone) as metric_date,
        u.user_id is not null as is_first,
        s.value_1, s.value_2, s.value_3, s.value_4, s.value_5, s.value_6, s.value_7, s.value_8,
        count(*) as sessions
    from dimensioned(scoped_sessions, dims) as s
    left join query_table(scoped_users) as u
        on u.user_id = s.user_id and u.first_seen_at = s.started_at
    group by all
),
value_segments as materialized (
    -- The segment of each value seen ('' for a missing one), per dimension: a small table,
    -- from the few distinct combinations of values.
    select v.dimension_no, v.value, segment_value(v.value, k.value) as segment
    from (
        select distinct
            unnest(range(1, len(dims) + 1)) as dimension_no,
            unnest(
                dimension_list(
                    dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
                )
            ) as value
        from (
            select distinct
                value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
            from query_table(scoped_user_days)
            union
            select distinct
                value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
            from session_days
        )
    ) as v
    left join dimension_values as k
        on k.dimension = dims[v.dimension_no].dimension
        and k.key = segment_key(dims[v.dimension_no], v.value)
),
activity as (
    select * from dimension_activity(scoped_user_days, 'value_segments', 1)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 2)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 3)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 4)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 5)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 6)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 7)
    union all select * from dimension_activity(scoped_user_days, 'value_segments', 8)
    union all
    select
        metric_date,
        0,
        'all',
        count(*),
        count(*) filter (where purchased),
        sum(events),
        sum(revenue)
    from (
        select
            metric_date,
            user_id,
            sum(events) as events,
            sum(revenue) as revenue,
            bool_or(purchased) as purchased
        from query_table(scoped_user_days)
        group by metric_date, user_id
    )
    group by metric_date
),
session_starts as (
    select
        v.metric_date,
        v.dimension_no,
        s.segment,
        sum(v.sessions) as sessions,
        sum(v.sessions) filter (where v.is_first) as new_users
    from (
        select
            metric_date,
            is_first,
            sessions,
            unnest(range(1, len(dims) + 1)) as dimension_no,
            unnest(
                dimension_list(
                    dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
                )
            ) as value
        from session_days
    ) as v
    join value_segments as s using (dimension_no, value)
    group by all
    union all
    select local_date(started_at, zone), 0, 'all', count(*), null
    from query_table(scoped_sessions)
    group by all
    union all
    select first_seen_date, 0, 'all', null, count(*)
    from query_table(scoped_users)
    group by all
),
all_days as (
    -- The ('all', 'all') row of every day asked for, even a day without events.
    select metric_date, 0 as dimension_no, 'all' as segment
    from query_table(scoped_days)
),
combined as (
    select * from activity
    union all by name select * from session_starts
    union all by name select * from all_days
)
select
    metric_date,
    if(dimension_no = 0, 'all', dims[dimension_no].dimension) as dimension,
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
group by metric_date, dimension_no, segment;
