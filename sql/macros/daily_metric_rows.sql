-- sql/macros/daily_metric_rows.sql: the rows of daily_metrics (CONTRACT §3) for the days of the
-- relations named `scoped_events` (events), `scoped_users` (users, by first_seen_date),
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
-- (session_fields below). `zone`: the project time zone that sessions' start days are cut in.
-- needs: macros/segments.sql
-- needs: macros/local_time.sql
create or replace temp macro daily_metric_rows(
    scoped_events, scoped_users, scoped_sessions, scoped_days, conversion_event, dims, zone
) as table
with user_days as (
    -- Shrink events once to one row per day, user and combination of dimension values; the
    -- dimensions are then counted from this much smaller set.
    select
        event_date as metric_date,
        user_id,
        value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8,
        count(*) as events,
        -- DECIMAL: a parallel sum of doubles is not deterministic in its last bits.
        sum(revenue::decimal(38, 9)) as revenue,
        bool_or(event = conversion_event) as purchased
    from dimensioned(scoped_events, dims)
    group by all
),
day_users as (
    -- One row per day and user: the 'all' rows, and `combos`, the user's combinations of
    -- values that day (most users have one).
    select
        metric_date,
        user_id,
        count(*) as combos,
        sum(events) as events,
        sum(revenue) as revenue,
        bool_or(purchased) as purchased
    from user_days
    group by metric_date, user_id
),
single_values as (
    -- Users with one combination: each has one value per dimension, so counting rows per
    -- (day, dimension, value) counts distinct users, with no per-user grouping.
    select
        metric_date,
        dimension_no,
        value,
        count(*) as active_users,
        count(*) filter (where purchased) as purchasers,
        sum(events) as events,
        sum(revenue) as revenue
    from (
        select
            metric_date,
            events,
            revenue,
            purchased,
            unnest(range(1, len(dims) + 1)) as dimension_no,
            unnest(
                dimension_list(
                    dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
                )
            ) as value
        from user_days
        semi join (select metric_date, user_id from day_users where combos = 1)
            using (metric_date, user_id)
    )
    group by all
),
multi_values as (
    -- Users with several combinations in a day (several values of some dimension): one row
    -- per day, user, dimension and value.
    select
        metric_date,
        user_id,
        events,
        revenue,
        purchased,
        unnest(range(1, len(dims) + 1)) as dimension_no,
        unnest(
            dimension_list(
                dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
            )
        ) as value
    from user_days
    semi join (select metric_date, user_id from day_users where combos > 1)
        using (metric_date, user_id)
),
session_values as (
    -- Sessions started per day, dimension and value of their first event; `first` marks a
    -- user's first session (starting at first_seen_at), whose first event is the user's first.
    select metric_date, is_first, dimension_no, value, count(*) as sessions
    from (
        select
            local_date(s.started_at, zone) as metric_date,
            u.user_id is not null as is_first,
            unnest(range(1, len(dims) + 1)) as dimension_no,
            unnest(
                dimension_list(
                    dims,
                    s.value_1, s.value_2, s.value_3, s.value_4,
                    s.value_5, s.value_6, s.value_7, s.value_8
                )
            ) as value
        from dimensioned(scoped_sessions, dims) as s
        left join query_table(scoped_users) as u
            on u.user_id = s.user_id and u.first_seen_at = s.started_at
    )
    group by all
),
value_segments as (
    -- The segment of each value seen: a small table joined after the counts are reduced.
    select v.dimension_no, v.value, segment_value(v.value, k.value) as segment
    from (
        select distinct dimension_no, value from single_values
        union
        select distinct dimension_no, value from multi_values
        union
        select distinct dimension_no, value from session_values
    ) as v
    left join dimension_values as k
        on k.dimension = dims[v.dimension_no].dimension
        and k.key = segment_key(dims[v.dimension_no], v.value)
),
multi_segments as (
    -- One row per user per segment first: values folded into one segment ('other') count
    -- such a user once.
    select
        metric_date,
        dimension_no,
        segment,
        count(*) as active_users,
        count(*) filter (where purchased) as purchasers,
        sum(events) as events,
        sum(revenue) as revenue
    from (
        select
            u.metric_date,
            u.user_id,
            u.dimension_no,
            s.segment,
            sum(u.events) as events,
            sum(u.revenue) as revenue,
            bool_or(u.purchased) as purchased
        from multi_values as u
        join value_segments as s using (dimension_no, value)
        group by all
    )
    group by all
),
activity as (
    select
        v.metric_date,
        v.dimension_no,
        s.segment,
        sum(v.active_users) as active_users,
        sum(v.purchasers) as purchasers,
        sum(v.events) as events,
        sum(v.revenue) as revenue
    from single_values as v
    join value_segments as s using (dimension_no, value)
    group by all
    union all
    select * from multi_segments
    union all
    select
        metric_date,
        0,
        'all',
        count(*),
        count(*) filter (where purchased),
        sum(events),
        sum(revenue)
    from day_users
    group by metric_date
),
session_starts as (
    select v.metric_date, v.dimension_no, s.segment, sum(v.sessions) as sessions
    from session_values as v
    join value_segments as s using (dimension_no, value)
    group by all
    union all
    select local_date(started_at, zone), 0, 'all', count(*)
    from query_table(scoped_sessions)
    group by all
),
new_users as (
    -- new_users: the first sessions (a user's first event is their first session's first).
    select v.metric_date, v.dimension_no, s.segment, sum(v.sessions) as new_users
    from session_values as v
    join value_segments as s using (dimension_no, value)
    where v.is_first
    group by all
    union all
    select first_seen_date, 0, 'all', count(*)
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
    union all by name select * from new_users
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
