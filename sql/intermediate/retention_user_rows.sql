-- sql/intermediate/retention_user_rows.sql: temp table retention_user_rows, what retention.sql
-- counts of each user (CONTRACT §3 retention), per retention definition and granularity, from
-- retention_events and retention_people (retention_scope*.sql: every user, or the changed
-- ones). $definitions is the list of {definition, start_event, return_event} from
-- eventpulse.yaml (names are data, never SQL text); $timezone the project zone.
-- A user's start is their first event (no start_event: users.first_seen_at) or their first
-- start_event; the cohort is the calendar day / week (Monday) / month of the start. Returning
-- events are the user's events (or return_event events) at or after the start, so period 0
-- counts only what came after the start, and is 1.0 by construction when returning means any
-- event. Period N is the calendar difference between the cohort's period and the activity's
-- period. One row per definition, granularity and user with a start:
--   cohort_start    the calendar period of the start;
--   periods         the distinct periods 0..max_period with a returning event (`exact`);
--   last_period     the period of the last returning event, capped at max_period (NULL: never
--                   returned): `on_or_after` counts the user in every period up to it.
-- The definition `any` (no start_event, no return_event) gives the rows retention gave before
-- definitions existed.
-- needs: macros/calendar.sql
-- needs: macros/local_time.sql
create or replace temp table retention_user_rows as
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
starts as (
    -- Each user's start per definition: its time, and its day (event_date, as every day here).
    select d.definition, u.user_id, u.first_seen_at as start_ts, u.first_seen_date as start_date
    from retention_people as u
    cross join definitions as d
    where d.start_event is null
    union all
    select
        d.definition,
        e.user_id,
        min(e.ts) as start_ts,
        arg_min(e.event_date, e.ts) as start_date
    from retention_events as e
    join definitions as d on d.start_event = e.event
    group by d.definition, e.user_id
),
activity as (
    -- For the other definitions, a user's days with their last time that day: of any event
    -- (returning = any event), and of each named return event. Only a start day can hold
    -- events before the start.
    select user_id, event_date, null::varchar as event, max(ts) as last_ts
    from retention_events
    where exists (select 1 from definitions where not plain and return_event is null)
    group by user_id, event_date
    union all
    select user_id, event_date, event, max(ts) as last_ts
    from retention_events
    where event in (select return_event from definitions)
    group by user_id, event_date, event
),
plain_days as (
    -- Plain definitions: every day with an event (none comes before the first), with the
    -- user's first day.
    select d.definition, a.user_id, a.event_date, u.first_seen_date as start_date
    from (
        select distinct user_id, event_date
        from retention_events
        where exists (select 1 from definitions where plain)
    ) as a
    join retention_people as u using (user_id)
    cross join (select definition from definitions where plain) as d
),
other_days as (
    -- Other definitions: each day with a returning event at or after the start, with the
    -- user's start day.
    select s.definition, a.user_id, a.event_date, s.start_date
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
    from retention_people as u
    cross join (select definition from definitions where plain) as d
    union all
    select definition, user_id, max(event_date) as last_date
    from other_days
    group by definition, user_id
),
user_periods as (
    -- Each user's distinct periods with a returning event, per granularity (0..max_period).
    select definition, granularity, user_id, list_sort(list(distinct period)) as periods
    from (
        select
            d.definition,
            g.granularity,
            g.max_period,
            d.user_id,
            calendar_period_index(g.granularity, d.start_date, d.event_date) as period
        from user_days as d
        cross join grains as g
    )
    where period <= max_period
    group by definition, granularity, user_id
)
select
    s.definition,
    g.granularity,
    s.user_id,
    calendar_period_start(g.granularity, s.start_date) as cohort_start,
    coalesce(p.periods, []) as periods,
    -- Not least(): it skips NULL, and a user who never returned has no last period.
    if(
        l.last_date is null,
        null,
        least(calendar_period_index(g.granularity, s.start_date, l.last_date), g.max_period)
    ) as last_period
from starts as s
cross join grains as g
left join last_days as l using (definition, user_id)
left join user_periods as p
    on p.definition = s.definition and p.granularity = g.granularity and p.user_id = s.user_id;
