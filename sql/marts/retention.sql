-- sql/marts/retention.sql: retention curves by calendar cohort, one set per retention definition
-- (CONTRACT §3 retention). Built from events and users; $definitions is the list of
-- {definition, start_event, return_event} from eventpulse.yaml (names are data, never SQL text).
-- A user's start is their first event (no start_event: users.first_seen_at) or their first
-- start_event; the cohort is the calendar day / week (Monday) / month of the start. Returning
-- events are the user's events (or return_event events) at or after the start, so period 0
-- counts only what came after the start, and is 1.0 by construction when returning means any
-- event. Period N is the calendar difference between the cohort's period and the activity's
-- period. `exact`: the user has a returning event in period N; `on_or_after`: in period N or any
-- later one, i.e. the period of the user's last returning event is N or later. Rows for periods
-- 0..30 (day), 0..12 (week, month), only where period N has started on or before the last
-- event date, zeros included. The definition `any` (no start_event, no return_event) gives the
-- rows this model gave before definitions existed.
-- needs: macros/calendar.sql
-- needs: macros/local_time.sql

create or replace table retention as
with grains(granularity, max_period) as (
    values ('day', 30), ('week', 12), ('month', 12)
),
definitions as (
    select
        *,
        -- First event, then any event (the default `any`): read from users, as ever.
        start_event is null and return_event is null as plain
    from (
        select unnest(
            $definitions::struct(definition varchar, start_event varchar, return_event varchar)[],
            recursive := true
        )
    )
),
last_event as (
    select max(event_date) as last_date from events
),
starts as (
    -- Each user's start per definition: its time, and its day (event_date, as every day here).
    select d.definition, u.user_id, u.first_seen_at as start_ts, u.first_seen_date as start_date
    from users as u
    cross join definitions as d
    where d.start_event is null
    union all
    select
        d.definition,
        e.user_id,
        min(e.ts) as start_ts,
        arg_min(e.event_date, e.ts) as start_date
    from events as e
    join definitions as d on d.start_event = e.event
    group by d.definition, e.user_id
),
activity as (
    -- For the other definitions, a user's days with their last time that day: of any event
    -- (returning = any event), and of each named return event. Only a start day can hold
    -- events before the start.
    select user_id, event_date, null::varchar as event, max(ts) as last_ts
    from events
    where exists (select 1 from definitions where not plain and return_event is null)
    group by user_id, event_date
    union all
    select user_id, event_date, event, max(ts) as last_ts
    from events
    where event in (select return_event from definitions)
    group by user_id, event_date, event
),
plain_days as (
    -- Plain definitions: every day with an event (none comes before the first), with the
    -- user's first day.
    select d.definition, a.user_id, a.event_date, u.first_seen_date
    from (
        select distinct user_id, event_date
        from events
        where exists (select 1 from definitions where plain)
    ) as a
    join users as u using (user_id)
    cross join (select definition from definitions where plain) as d
),
other_days as (
    -- Other definitions: each day with a returning event at or after the start, with the
    -- user's start day.
    select s.definition, a.user_id, a.event_date, s.start_date as first_seen_date
    from activity as a
    join starts as s using (user_id)
    join definitions as d
        on d.definition = s.definition
        and not d.plain
        and a.event is not distinct from d.return_event
    where a.last_ts >= s.start_ts
),
user_days as (
    -- Each day on which a user has a returning event, with the user's start day.
    select * from plain_days
    union all
    select * from other_days
),
last_days as (
    -- Each user's last returning day per definition (plain: their last event's).
    select d.definition, u.user_id, local_date(u.last_seen_at, $timezone) as last_date
    from users as u
    cross join (select definition from definitions where plain) as d
    union all
    select definition, user_id, max(event_date) as last_date
    from other_days
    group by definition, user_id
),
cohort_users as (
    -- One row per definition, user and granularity: cohort and the period of the user's last
    -- returning event (NULL: never returned).
    select
        s.definition,
        g.granularity,
        g.max_period,
        calendar_period_start(g.granularity, s.start_date) as cohort_start,
        calendar_period_index(g.granularity, s.start_date, l.last_date) as last_period
    from starts as s
    left join last_days as l using (definition, user_id)
    cross join grains as g
),
cohort_sizes as (
    select definition, granularity, max_period, cohort_start, count(*) as cohort_users
    from cohort_users
    group by definition, granularity, max_period, cohort_start
),
periods as (
    -- Every period 0..max_period of every cohort that has started by the last event date.
    select s.definition, s.granularity, s.cohort_start, s.cohort_users, n.period
    from cohort_sizes as s
    cross join range(0, 31) as n(period)
    cross join last_event as l
    where n.period <= s.max_period
        and calendar_nth_period_start(s.granularity, s.cohort_start, n.period) <= l.last_date
),
exact_counts as (
    -- Distinct users per cohort and period with an event (a user has many days in a week).
    select
        d.definition,
        g.granularity,
        calendar_period_start(g.granularity, d.first_seen_date) as cohort_start,
        calendar_period_index(g.granularity, d.first_seen_date, d.event_date) as period,
        count(distinct d.user_id) as retained_users
    from user_days as d
    cross join grains as g
    group by d.definition, g.granularity, cohort_start, period
),
last_periods as (
    -- How many users of a cohort had their last event in each period (capped at max_period).
    select definition, granularity, cohort_start, least(last_period, max_period) as last_period,
        count(*) as users
    from cohort_users
    where last_period is not null
    group by definition, granularity, cohort_start, least(last_period, max_period)
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
