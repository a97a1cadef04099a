-- sql/staging/history_window.sql: the span of arrival days that holds every copy a load of
-- $days may look at (load_partition.sql's other_copies, its update of `kept`, and
-- record_changes.sql's events_after): the copies of the event ids those days hold or bring
-- (parsed_batch), and the days themselves. Read once per load, before its days are replaced;
-- exact for all of them, since a load only adds and removes copies on its own days and only of
-- those ids. The per-day statements filter `arrival_date between` it, which DuckDB answers from
-- the row groups' min/max (copies of an id arrive within days of each other), instead of
-- reading every event id in history once per day.
select
    least(min(arrival_date), list_min($days)) as history_first,
    greatest(max(arrival_date), list_max($days)) as history_last
from event_copies
where event_id in (
    select event_id from parsed_batch where reason is null
    union
    select event_id from event_copies where list_contains($days, arrival_date)
);
