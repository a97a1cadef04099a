-- sql/intermediate/dimension_user_days_update.sql: bring dimension_user_days up to date with the
-- changes recorded since $applied: a day's rows depend only on that day's events, so the days
-- that loads changed are computed again (dimension_user_days.sql is the reference).
-- needs: macros/segments.sql
create or replace temp table dimension_changed_days as
select distinct event_date from mart_changes where change_no > $applied and source = 'events';

create or replace temp view dimension_changed_day_events as
select event_date, user_key, event, revenue, platform, channel, campaign, country, properties
from event_copies
where kept and event_date in (select event_date from dimension_changed_days);

delete from dimension_user_days
where metric_date in (select event_date from dimension_changed_days);

insert into dimension_user_days by name
select * from dimension_user_day_rows(
    'dimension_changed_day_events', $conversion_event, $dimensions
);
