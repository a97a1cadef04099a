-- sql/intermediate/dimension_user_days.sql: one row per day, user and combination of the
-- configured dimensions' values of their events that day (an internal table), with the day's
-- events, revenue and whether one was a $conversion_event. Every mart with segments starts from
-- it instead of from events: dimension_values counts distinct users per value from it,
-- daily_metrics counts each day's segments from it. Rebuilt here from every event; kept current
-- by dimension_user_days_update.sql (the changed days only).
-- needs: macros/segments.sql
create or replace table dimension_user_days as
select * from dimension_user_day_rows('events', $conversion_event, $dimensions);
