-- sql/intermediate/cohort_user_days.sql: each (user, day) with an event and the user's revenue
-- that day, from every event; what cohorts.sql reads instead of events. A stored table, not a
-- temp one: cohort_user_days_update.sql keeps it up to date with the changed (user, day) pairs
-- only, so a daily cohorts build does not read every event.
create or replace table cohort_user_days as
-- DECIMAL: a parallel sum of doubles is not deterministic in its last bits.
select user_id, event_date, sum(revenue::decimal(38, 9)) as revenue
from events
group by user_id, event_date;
