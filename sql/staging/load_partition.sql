-- Replace one arrival day in ONE transaction (CONTRACT §2): a reader or a crash never sees the
-- day half-written. Of several copies of an event id, the earliest by (arrival_date,
-- source_file, line_no) is kept; ids touched by this day are re-decided from every copy ever
-- loaded (event_copies), so the result does not depend on load order.
begin transaction;

create or replace temp table affected_ids as
select event_id from event_copies where arrival_date = $arrival_date
union
select event_id from parsed_records where reason is null;

delete from event_copies where arrival_date = $arrival_date;

insert into event_copies
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
       properties, $arrival_date, source_file, line_no, raw
from parsed_records
where reason is null;

create or replace temp table ranked_copies as
select
    *,
    row_number() over copies as copy_rank,
    first_value(arrival_date) over copies as kept_arrival_date,
    first_value(source_file) over copies as kept_source_file,
    first_value(line_no) over copies as kept_line_no
from event_copies
where event_id in (select event_id from affected_ids)
window copies as (partition by event_id order by arrival_date, source_file, line_no);

delete from events where event_id in (select event_id from affected_ids);

insert into events
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
       properties, arrival_date, source_file, line_no
from ranked_copies
where copy_rank = 1;

delete from quarantine
where (arrival_date = $arrival_date and reason <> 'duplicate_event_id')
   or (reason = 'duplicate_event_id' and event_id in (select event_id from affected_ids));

insert into quarantine
select $arrival_date, source_file, line_no, reason, detail, raw, null
from parsed_records
where reason is not null;

insert into quarantine
select arrival_date, source_file, line_no, 'duplicate_event_id',
       'event_id ' || event_id || ': the copy kept arrived ' || kept_arrival_date::varchar
           || ' in ' || kept_source_file || ' line ' || kept_line_no::varchar,
       raw, event_id
from ranked_copies
where copy_rank > 1;

insert into ingest_log
select
    $arrival_date,
    $files,
    (select count(*) from raw_records),
    (select count(*) from events where arrival_date = $arrival_date),
    (select count(*) from quarantine where arrival_date = $arrival_date),
    (select count(*) from quarantine
      where arrival_date = $arrival_date and reason = 'duplicate_event_id'),
    $started_at,
    $finished_at,
    $unreadable_files;

commit;
