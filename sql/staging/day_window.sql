-- sql/staging/day_window.sql: the span of arrival days holding every copy of the event ids the
-- load of $arrival_date touches: those its copies hold and those it brings (copy_days.sql). The
-- day's statements filter `arrival_date between` it, which DuckDB answers from the row
-- groups' min/max (copies of an id arrive within days of each other), instead of reading
-- every event id in history once per day.
select
    least(min(arrival_date), $arrival_date) as history_first,
    greatest(max(arrival_date), $arrival_date) as history_last
from copy_days
where event_id in (select event_id from copy_days where arrival_date = $arrival_date);
