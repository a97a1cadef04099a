-- sql/marts/retention.sql: retention curves by calendar cohort, one set per retention definition
-- (CONTRACT §3 retention), counted from retention_users (each user's cohort and the periods
-- they returned in, sql/intermediate/retention_user_rows.sql, which holds the definitions) and
-- the last event date. `exact`: the user has a returning event in period N; `on_or_after`: in
-- period N or any later one, i.e. the period of the user's last returning event is N or later.
-- Rows for periods 0..30 (day), 0..12 (week, month), only where period N has started on or
-- before the last event date, zeros included.
-- needs: macros/calendar.sql

create or replace table retention as
with grains(granularity, max_period) as (
    values ('day', 30), ('week', 12), ('month', 12)
),
last_event as (
    select max(event_date) as last_date from events
),
cohort_sizes as (
    select definition, granularity, cohort_start, count(*) as cohort_users
    from retention_users
    group by definition, granularity, cohort_start
),
periods as (
    -- Every period 0..max_period of every cohort that has started by the last event date.
    select s.definition, s.granularity, s.cohort_start, s.cohort_users, n.period
    from cohort_sizes as s
    join grains as g using (granularity)
    cross join range(0, 31) as n(period)
    cross join last_event as l
    where n.period <= g.max_period
        and calendar_nth_period_start(s.granularity, s.cohort_start, n.period) <= l.last_date
),
exact_counts as (
    -- Users per cohort and period with a returning event (periods are distinct per user).
    select definition, granularity, cohort_start, period, count(*) as retained_users
    from (
        select definition, granularity, cohort_start, unnest(periods) as period
        from retention_users
    )
    group by definition, granularity, cohort_start, period
),
last_periods as (
    -- How many users of a cohort had their last returning event in each period (capped).
    select definition, granularity, cohort_start, last_period, count(*) as users
    from retention_users
    where last_period is not null
    group by definition, granularity, cohort_start, last_period
),
on_or_after_counts as (
    select p.definition, p.granularity, p.cohort_start, p.period, sum(l.users) as retained_users
    from periods as p
    join last_periods as l
        on l.definition = p.definition
        and l.granularity = p.granularity
        and l.cohort_start = p.cohort_start
        and l.last_period >= p.period
    group by p.definition, p.granularity, p.cohort_start, p.period
),
both_modes as (
    select p.*, 'exact' as mode, coalesce(e.retained_users, 0) as retained_users
    from periods as p
    left join exact_counts as e using (definition, granularity, cohort_start, period)
    union all
    select p.*, 'on_or_after' as mode, coalesce(o.retained_users, 0) as retained_users
    from periods as p
    left join on_or_after_counts as o using (definition, granularity, cohort_start, period)
)
select
    definition,
    granularity,
    mode,
    cohort_start,
    cohort_users::bigint as cohort_users,
    period::integer as period,
    retained_users::bigint as retained_users,
    (retained_users / cohort_users)::double as retention_rate,
    -- Period N has ended by the last event date: the next period starts on the day after it or
    -- earlier (a period ending on the last event date is complete).
    calendar_nth_period_start(granularity, cohort_start, period + 1)
        <= (select last_date from last_event) + 1 as is_complete
from both_modes
order by definition, granularity, mode, cohort_start, period;
