-- sql/staging/copy_days.sql: where the copies live that the load of $days may look at
-- (load_partition.sql's other_copies, its update of `kept`, record_changes.sql's
-- events_after): the arrival days of every copy of the event ids those days hold or bring.
-- Built once per load, before its days are replaced: the one look through the whole history.
-- It stays a superset while the load runs, since a load only adds copies of those ids
-- (parsed_batch, listed here) and removes copies on its own days. day_window.sql reads it.
create or replace temp table copy_days as
select event_id, arrival_date
from event_copies
where event_id in (
    select event_id from parsed_batch where reason is null
    union
    select event_id from event_copies where list_contains($days, arrival_date)
)
union
select event_id, arrival_date from parsed_batch where reason is null;
