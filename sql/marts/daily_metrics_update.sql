-- sql/marts/daily_metrics_update.sql: bring `daily_metrics` up to date with the changes recorded
-- since $applied, instead of rebuilding it (daily_metrics.sql, the reference). A day's rows
-- depend only on that day's events, on the users first seen that day and on the sessions
-- started that day; loads, the sessions update and the users update recorded exactly those
-- days in mart_changes. Those days are computed again, and so are the days the event range
-- gained (their ('all', 'all') row); days outside the range (all their events removed) go.
-- needs: macros/daily_metric_rows.sql
-- needs: macros/local_time.sql

create or replace temp table metric_range as
select min(event_date) as first_day, max(event_date) as last_day from events;

create or replace temp table changed_days as
select distinct event_date as metric_date
from mart_changes
where change_no > $applied
union
select day::date
from metric_range, generate_series(first_day, last_day, interval 1 day) as days(day)
where day::date not in (
    select metric_date from daily_metrics where dimension = 'all' and segment = 'all'
);

-- The kept events of those days as session_values looks sessions' first events up in them.
create or replace temp view changed_day_events as
select rowid as event_row, user_key, ts, event_id, country, properties
from event_copies
where kept and event_date in (select metric_date from changed_days);

-- dimension_user_days is already up to date for these days (dimension_user_days_update.sql).
create or replace temp view changed_day_user_days as
select * from dimension_user_days where metric_date in (select metric_date from changed_days);

create or replace temp view changed_day_users as
select * from users where first_seen_date in (select metric_date from changed_days);

-- A table, not a view: a view cannot hold the bound $timezone. (The changed days' sessions only.)
create or replace temp table changed_day_sessions as
select * from sessions where local_date(started_at, $timezone) in (select metric_date from changed_days);

create or replace temp view changed_range_days as
select c.metric_date
from changed_days as c, metric_range as r
where c.metric_date between r.first_day and r.last_day;

delete from daily_metrics
where metric_date in (select metric_date from changed_days)
    or coalesce(
        metric_date not between (select first_day from metric_range)
            and (select last_day from metric_range),
        true
    );

create or replace temp table changed_day_session_values as
select * from session_values(
    'changed_day_sessions', 'changed_day_events', $session_event_fields, $dimensions
);

insert into daily_metrics by name
select * from daily_metric_rows(
    'changed_day_user_days',
    'changed_day_users',
    'changed_day_session_values',
    'changed_range_days',
    $dimensions,
    $timezone
);
