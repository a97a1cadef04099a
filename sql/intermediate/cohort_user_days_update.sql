-- sql/intermediate/cohort_user_days_update.sql: bring cohort_user_days up to date with the
-- (user, day) pairs whose events changed since $applied (mart_changes from loads), instead of
-- rebuilding it (cohort_user_days.sql, the reference).
create or replace temp table changed_user_days as
select distinct user_id, event_date
from mart_changes
where change_no > $applied and source = 'events';

delete from cohort_user_days as d
using changed_user_days as c
where d.user_id = c.user_id and d.event_date = c.event_date;

insert into cohort_user_days
select e.user_id, e.event_date, sum(e.revenue::decimal(38, 9)) as revenue
from events as e
semi join changed_user_days as c using (user_id, event_date)
group by e.user_id, e.event_date;
