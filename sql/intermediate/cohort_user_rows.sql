-- sql/intermediate/cohort_user_rows.sql: what the cohorts count of each user of cohort_people
-- (cohort_scope*.sql), as two temp tables (CONTRACT §3 cohorts):
--   cohort_member_rows  one row per user, granularity and dimension ('all' is dimension_no 0):
--                       the user's cohort (the calendar week (Monday) or month of their first
--                       event) and segment (their value of the dimension on their first event,
--                       fixed for life: 'unknown' when missing, 'other' when not a kept value
--                       of dimension_values, CONTRACT §3 Breakdowns);
--   cohort_period_rows  one row per user, granularity and period 0..12 in which they have an
--                       event, with their revenue in it (from cohort_user_days, which is kept
--                       current with the changed (user, day) pairs: no event is read here).
-- period_index is the calendar difference between the cohort's period and the activity's.
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
from cohort_people;

create or replace temp table cohort_first_events as
select *
from session_fields('cohort_first_event_rows', 'events', $session_event_fields);

create or replace temp table cohort_member_rows as
with grains(cohort_granularity) as (
    values ('week'), ('month')
),
acquisition as (
    -- One row per user and dimension ('all' included) with the user's acquisition segment.
    select user_id, 0 as dimension_no, 'all' as segment
    from cohort_people
    union all
    select user_id, dimension_no, segment
    from row_segments('cohort_first_events', $dimensions)
)
select
    g.cohort_granularity,
    u.user_id,
    calendar_period_start(g.cohort_granularity, u.first_seen_date) as cohort_start,
    a.dimension_no,
    a.segment
from cohort_people as u
join acquisition as a using (user_id)
cross join grains as g;

create or replace temp table cohort_period_rows as
with grains(cohort_granularity) as (
    values ('week'), ('month')
)
select
    g.cohort_granularity,
    d.user_id,
    calendar_period_index(g.cohort_granularity, u.first_seen_date, d.event_date) as period_index,
    sum(d.revenue) as revenue
from cohort_user_days as d
join cohort_people as u using (user_id)
cross join grains as g
where period_index <= 12
group by g.cohort_granularity, d.user_id, period_index;
