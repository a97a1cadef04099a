-- sql/marts/cohorts.sql: acquisition cohorts (CONTRACT §3 cohorts), counted from the internal
-- cohort_segment_sizes and cohort_cells (sql/intermediate/cohort_cells*.sql: users per cohort
-- and segment, active users and revenue per cohort, segment and period, from each user's
-- cohort, acquisition segment and periods, sql/intermediate/cohort_user_rows.sql) and the last
-- event date. Rows for periods 0..12, only where the period has started on or before the last
-- event date (the rule of retention), zeros included; `active_users` and `revenue` of a period
-- with no cell are 0.
-- needs: macros/calendar.sql

create or replace table cohorts as
with last_event as (
    select max(event_date) as last_date from events
),
periods as (
    -- Every period 0..12 of every cohort segment that has started by the last event date.
    select s.*, n.period_index
    from cohort_segment_sizes as s
    cross join range(0, 13) as n(period_index)
    cross join last_event as l
    where calendar_nth_period_start(s.cohort_granularity, s.cohort_start, n.period_index)
        <= l.last_date
),
filled as (
    select
        p.cohort_granularity,
        p.cohort_start,
        if(p.dimension_no = 0, 'all', $dimensions[p.dimension_no].dimension) as dimension,
        p.segment,
        p.cohort_users,
        p.period_index,
        coalesce(a.active_users, 0) as active_users,
        coalesce(a.revenue, 0) as revenue
    from periods as p
    left join cohort_cells as a
        using (cohort_granularity, cohort_start, dimension_no, segment, period_index)
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
