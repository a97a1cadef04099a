-- sql/marts/cohorts.sql: acquisition cohorts (CONTRACT §3 cohorts).
-- Built from events, users and dimension_values. A cohort is the calendar week (Monday) or
-- month of a user's first event; the segment is the user's value of each configured dimension
-- on their first event, fixed for life: 'unknown' when missing, 'other' when not a kept value
-- (CONTRACT §3 Breakdowns). period_index is the calendar
-- difference between the cohort's period and the activity's period. Rows for periods 0..12,
-- only where the period has started on or before the last event date (the rule of retention),
-- zeros included.
-- needs: macros/calendar.sql
-- needs: macros/segments.sql

-- Each user's first event, with the fields that the dimensions read: `users` keeps its platform,
-- channel and campaign (acquisition_*); session_fields reads country and properties from the
-- event itself (at first_seen_at, the smallest event id) only when a dimension needs them.
create or replace temp view cohort_first_event_rows as
select
    user_id,
    first_seen_at as started_at,
    acquisition_platform as platform,
    acquisition_channel as channel,
    acquisition_campaign as campaign
from users;

create or replace temp table cohort_first_events as
select *
from session_fields('cohort_first_event_rows', 'events', $session_event_fields);

create or replace table cohorts as
with grains(cohort_granularity) as (
    values ('week'), ('month')
),
last_event as (
    select max(event_date) as last_date from events
),
acquisition as (
    -- One row per user and dimension ('all' included) with the user's acquisition segment.
    select user_id, 0 as dimension_no, 'all' as segment
    from users
    union all
    select user_id, dimension_no, segment
    from row_segments('cohort_first_events', $dimensions)
),
members as (
    -- One row per user, granularity and dimension, with the user's cohort and segment.
    select
        g.cohort_granularity,
        u.user_id,
        calendar_period_start(g.cohort_granularity, u.first_seen_date) as cohort_start,
        a.dimension_no,
        a.segment
    from users as u
    join acquisition as a using (user_id)
    cross join grains as g
),
user_days as (
    -- Each day on which a user has an event, with its revenue and the user's first day.
    -- cohort_user_days holds them, kept up to date with the changed (user, day) pairs
    -- (sql/intermediate/cohort_user_days*.sql), so this model does not group every event again.
    select d.user_id, d.event_date, d.revenue, u.first_seen_date
    from cohort_user_days as d
    join users as u using (user_id)
),
user_periods as (
    -- Each user's revenue per period in which they have an event (periods 0..12 only).
    select
        g.cohort_granularity,
        d.user_id,
        calendar_period_index(g.cohort_granularity, d.first_seen_date, d.event_date)
            as period_index,
        sum(d.revenue) as revenue
    from user_days as d
    cross join grains as g
    where period_index <= 12
    group by g.cohort_granularity, d.user_id, period_index
),
cohort_sizes as (
    select
        cohort_granularity,
        cohort_start,
        if(dimension_no = 0, 'all', $dimensions[dimension_no].dimension) as dimension,
        segment,
        count(*) as cohort_users
    from members
    group by cohort_granularity, cohort_start, dimension_no, segment
),
period_activity as (
    select
        m.cohort_granularity,
        m.cohort_start,
        p.period_index,
        if(m.dimension_no = 0, 'all', $dimensions[m.dimension_no].dimension) as dimension,
        m.segment,
        count(*) as active_users,
        sum(p.revenue) as revenue
    from user_periods as p
    join members as m using (cohort_granularity, user_id)
    group by m.cohort_granularity, m.cohort_start, p.period_index, m.dimension_no, m.segment
),
periods as (
    -- Every period 0..12 of every cohort segment that has started by the last event date.
    select s.*, n.period_index
    from cohort_sizes as s
    cross join range(0, 13) as n(period_index)
    cross join last_event as l
    where calendar_nth_period_start(s.cohort_granularity, s.cohort_start, n.period_index)
        <= l.last_date
),
filled as (
    select
        p.*,
        coalesce(a.active_users, 0) as active_users,
        coalesce(a.revenue, 0) as revenue
    from periods as p
    left join period_activity as a
        using (cohort_granularity, cohort_start, dimension, segment, period_index)
)
select
    cohort_granularity,
    cohort_start,
    dimension,
    segment,
    cohort_users::bigint as cohort_users,
    period_index::integer as period_index,
    active_users::bigint as active_users,
    (active_users / cohort_users)::double as retention_rate,
    (1 - active_users / cohort_users)::double as churn_rate,
    revenue::double as revenue,
    cumulative_revenue::double as cumulative_revenue,
    (cumulative_revenue / cohort_users)::double as ltv,
    -- As in retention: the period has ended by the last event date.
    calendar_nth_period_start(cohort_granularity, cohort_start, period_index + 1)
        <= (select last_date from last_event) + 1 as is_complete
from (
    select
        *,
        -- Through this period: periods are consecutive from 0, so a running sum.
        sum(revenue) over (
            partition by cohort_granularity, cohort_start, dimension, segment
            order by period_index
            rows unbounded preceding
        ) as cumulative_revenue
    from filled
)
order by cohort_granularity, cohort_start, dimension, segment, period_index;
