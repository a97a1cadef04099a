-- sql/marts/funnel_daily.sql: funnel users by entry date (CONTRACT §3 funnel_daily). Needs
-- funnel_config and funnel_user_attempts. users at (entry_date, step k): users whose counted attempt
-- entered on that date (project zone) and reached at least step k. Rows for every date on which some
-- counted attempt entered, for every step of the funnel (zeros included); a funnel nobody
-- entered has no rows.
create or replace table funnel_daily as
with entered as (
    select funnel, entry_date, furthest_step, count(*) as users
    from funnel_user_attempts
    group by all
),
days as (
    select distinct funnel, entry_date from entered
)
select
    d.funnel,
    d.entry_date,
    c.step_index,
    c.step,
    coalesce(sum(e.users) filter (where e.furthest_step >= c.step_index), 0)::bigint as users,
    -- Every attempt entered that day has had its whole window by the end of the last event date:
    -- the day's last possible entry (its end) plus the window is no later than the end of that
    -- date, i.e. entry_date + window <= last event date (CONTRACT §3 funnel_daily).
    d.entry_date + any_value(c.window_interval)
        <= (select max(event_date) from events)::timestamp as is_complete
from days as d
join funnel_config as c using (funnel)
left join entered as e on e.funnel = d.funnel and e.entry_date = d.entry_date
group by d.funnel, d.entry_date, c.step_index, c.step
order by d.funnel, d.entry_date, c.step_index;
