-- sql/marts/retention.sql: retention curves by calendar cohort (CONTRACT §3 retention).
-- Built from events and users. A user's cohort is the calendar day / week (Monday) / month of
-- their first event; period N is the calendar difference between the cohort's period and the
-- activity's period. `exact`: the user has an event in period N; `on_or_after`: in period N or
-- any later one, i.e. the period of the user's last event is N or later. Rows for periods
-- 0..30 (day), 0..12 (week, month), only where period N has started on or before the last
-- event date, zeros included.
-- needs: macros/calendar.sql

create or replace table retention as
with grains(granularity, max_period) as (
    values ('day', 30), ('week', 12), ('month', 12)
),
last_event as (
    select max(event_date) as last_date from events
),
user_days as (
    -- Each day on which a user has an event, with the user's first day.
    select d.user_id, d.event_date, u.first_seen_date
    from (select distinct user_id, event_date from events) as d
    join users as u using (user_id)
),
cohort_users as (
    -- One row per user and granularity: cohort and the period of the user's last event.
    select
        g.granularity,
        g.max_period,
        calendar_period_start(g.granularity, u.first_seen_date) as cohort_start,
        calendar_period_index(g.granularity, u.first_seen_date, u.last_seen_at::date)
            as last_period
    from users as u
    cross join grains as g
),
cohort_sizes as (
    select granularity, max_period, cohort_start, count(*) as cohort_users
    from cohort_users
    group by granularity, max_period, cohort_start
),
periods as (
    -- Every period 0..max_period of every cohort that has started by the last event date.
    select s.granularity, s.cohort_start, s.cohort_users, n.period
    from cohort_sizes as s
    cross join range(0, 31) as n(period)
    cross join last_event as l
    where n.period <= s.max_period
        and calendar_nth_period_start(s.granularity, s.cohort_start, n.period) <= l.last_date
),
exact_counts as (
    -- Distinct users per cohort and period with an event (a user has many days in a week).
    select
        g.granularity,
        calendar_period_start(g.granularity, d.first_seen_date) as cohort_start,
        calendar_period_index(g.granularity, d.first_seen_date, d.event_date) as period,
        count(distinct d.user_id) as retained_users
    from user_days as d
    cross join grains as g
    group by g.granularity, cohort_start, period
),
last_periods as (
    -- How many users of a cohort had their last event in each period (capped at max_period).
    select granularity, cohort_start, least(last_period, max_period) as last_period,
        count(*) as users
    from cohort_users
    group by granularity, cohort_start, least(last_period, max_period)
),
on_or_after_counts as (
    select p.granularity, p.cohort_start, p.period, sum(l.users) as retained_users
    from periods as p
    join last_periods as l
        on l.granularity = p.granularity
        and l.cohort_start = p.cohort_start
        and l.last_period >= p.period
    group by p.granularity, p.cohort_start, p.period
),
both_modes as (
    select p.*, 'exact' as mode, coalesce(e.retained_users, 0) as retained_users
    from periods as p
    left join exact_counts as e using (granularity, cohort_start, period)
    union all
    select p.*, 'on_or_after' as mode, coalesce(o.retained_users, 0) as retained_users
    from periods as p
    left join on_or_after_counts as o using (granularity, cohort_start, period)
)
select
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
order by granularity, mode, cohort_start, period;
