-- sql/staging/copy_days.sql: where the copies live that the load of $days may look at
-- (load_partition.sql's other_copies, its update of `kept`, record_changes.sql's
-- events_after): the arrival days of every copy of the event ids those days hold or bring.
-- Built once per load, before its days are replaced: the one look through the whole history.
-- It stays a superset while the load runs, since a load only adds copies of those ids
-- (parsed_batch, listed here) and removes copies on its own days. day_window.sql reads it.
--
-- Only ids with several copies are listed. An id with one copy has no other copy to rank it
-- against, no duplicate to quarantine, and widens no day's window beyond its own day (which
-- day_window.sql always includes); so load_partition.sql looks only for the ids listed here,
-- and a load of millions of new records (nearly all with one copy) does not carry them all
-- through each of those lookups.
create or replace temp table copy_days as
with copies as (
    select event_id, arrival_date
    from event_copies
    -- union all: a lookup list needs no distinct ids, and making them distinct is a pass
    -- over every id the load brings.
    where event_id in (
        select event_id from parsed_batch where reason is null
        union all
        select event_id from event_copies where list_contains($days, arrival_date)
    )
    union all
    select event_id, arrival_date from parsed_batch where reason is null
)
select distinct event_id, arrival_date
from copies
where event_id in (select event_id from copies group by event_id having count(*) > 1);
