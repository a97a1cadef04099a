-- sql/marts/daily_metrics.sql: one row per day and segment (CONTRACT §3 daily_metrics), rebuilt
-- from every event, user and session (build users, sessions, dimension_user_days and
-- dimension_values first: dimension_user_days holds the events grouped per day and user); the
-- reference that daily_metrics_update.sql must equal. Every day from the first to the last
-- event date has an ('all', 'all') row, zeros included.
-- needs: macros/daily_metric_rows.sql
create or replace temp view metric_days as
select day::date as metric_date
from (select min(event_date) as first_day, max(event_date) as last_day from events),
    generate_series(first_day, last_day, interval 1 day) as days(day);

-- The kept events as session_values looks sessions' first events up in them.
create or replace temp view metric_events as
select rowid as event_row, user_key, ts, event_id, country, properties
from event_copies
where kept;

create or replace temp table metric_sessions as
select * from session_values('sessions', 'metric_events', $session_event_fields, $dimensions);

create or replace table daily_metrics as
select *
from daily_metric_rows(
    'dimension_user_days', 'users', 'metric_sessions', 'metric_days', $dimensions, $timezone
)
order by metric_date, dimension, segment;
