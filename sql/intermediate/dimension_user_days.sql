-- sql/intermediate/dimension_user_days.sql: one row per day, user and combination of the
-- configured dimensions' values of their events that day (an internal table), with the day's
-- events, revenue and whether one was a $conversion_event. Every mart with segments starts from
-- it instead of from events: dimension_values counts distinct users per value from it,
-- daily_metrics counts each day's segments from it. Rebuilt here from every event; kept current
-- by dimension_user_days_update.sql (the changed days only).
-- needs: macros/segments.sql

-- The kept events (`events`) with their user key (sql/staging/tables.sql: one key per user_id).
create or replace temp view dimension_events as
select event_date, user_key, event, revenue, platform, channel, campaign, country, properties
from event_copies
where kept;

create or replace table dimension_user_days as
select * from dimension_user_day_rows('dimension_events', $conversion_event, $dimensions);
