-- Replace one arrival day (CONTRACT §2) with its parsed_records (day_records.sql). Runs inside
-- the day's one transaction, with resolve_identities.sql after it (assets/ingest/load.py): a
-- reader or a crash never sees the day half-written. Of several copies of an event id, the earliest by (arrival_date,
-- source_file, line_no) is kept. Every id this day held before or holds now is re-decided
-- from all its copies, so the result does not depend on load order.
-- needs: macros/identity.sql
-- Only the ids with several copies (copy_days.sql) are looked up below: the others have no
-- copy on another day and no duplicate.
create or replace temp table affected_ids as
select event_id from event_copies
where arrival_date = $arrival_date and event_id in (select event_id from copy_days)
union
select event_id from parsed_records
where reason is null and event_id in (select event_id from copy_days);

-- The copies of those ids on other days: the one look through the whole history a load
-- makes (events_before, ranked_copies, the duplicates' quarantine rows and record_changes.sql's
-- events_after read them here). Usually few: an id seldom arrives on two days.
create or replace temp table other_copies as
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
    properties, arrival_date, source_file, line_no, kept, anonymous_id, raw
from event_copies
where arrival_date <> $arrival_date
  -- Every copy of an affected id arrived in this span (day_window.sql): most row groups
  -- are skipped unread.
  and arrival_date between $history_first and $history_last
  and event_id in (select event_id from affected_ids);

-- What `events` held for those ids before the load, to record what it changed
-- (record_changes.sql, after resolve_identities.sql): the day's kept copies (all of them are
-- affected) and the kept ones of other days.
create or replace temp table events_before as
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
    properties
from event_copies
where arrival_date = $arrival_date and kept
union all
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
    properties
from other_copies
where kept;

-- Anonymous ids this load may re-link: those of the day's copies before it (CONTRACT §2
-- Identity). The day's new copies and every copy whose fate it changes join them below.
create or replace temp table touched_anonymous as
select distinct anonymous_id from event_copies
where arrival_date = $arrival_date and anonymous_id is not null;

delete from event_copies where arrival_date = $arrival_date;

-- Keys only (not whole rows) of every copy of the affected ids that have several copies or
-- copies on other days (which may need promoting), ranked. A copy of this day that is the only
-- one of its id (nearly all, and not in copy_days.sql) is kept.
create or replace temp table ranked_copies as
with copies as (
    select event_id, arrival_date, source_file, line_no, null::bigint as staged_row
    from other_copies
    union all
    select event_id, $arrival_date, source_file, line_no, rowid
    from parsed_records
    where reason is null and event_id in (select event_id from copy_days)
)
select *, row_number() over (
    partition by event_id order by arrival_date, source_file, line_no
) = 1 as kept
from copies
where event_id in (
    select event_id
    from copies
    group by event_id
    having count(*) > 1 or bool_or(staged_row is null)
);

-- Key the users of the loaded records (the new_user_keys macro of tables.sql).
create or replace temp view loaded_users as
select user_id from parsed_records where reason is null;
insert into user_keys select * from new_user_keys('loaded_users');

-- CONTRACT §2 Identity: the day's anonymous records go in under their person already (DuckDB
-- updates rows written in the same transaction slowly); resolve_identities.sql then settles
-- the links with every copy, and re-attributes earlier days' copies.
-- A table, not a view: a view cannot hold the bound $arrival_date.
create or replace temp table day_link_candidates as
select anonymous_id, user_id, ts, arrival_date
from event_copies
where kept and identified and anonymous_id in (
    select anonymous_id from parsed_records where reason is null and not identified
)
union all
select p.anonymous_id, p.user_id, p.ts, $arrival_date
from parsed_records as p
left join ranked_copies as r on r.staged_row = p.rowid
where p.reason is null and p.identified and p.anonymous_id is not null
  and coalesce(r.kept, true);

create or replace temp table day_links as select * from winning_links('day_link_candidates');

-- By name: a migrated warehouse has its later columns in the order they were added.
insert into event_copies by name
select p.event_id, p.person as user_id, p.event, p.ts, p.event_date, p.platform, p.channel,
       p.campaign, p.country, p.revenue, p.properties, $arrival_date as arrival_date,
       p.source_file, p.line_no, p.raw, coalesce(r.kept, true) as kept, k.user_key,
       identified_sent_id(p.identified, p.distinct_id, p.person) as distinct_id, p.anonymous_id,
       p.identified
from (
    select
        p.*,
        p.rowid as staged_row,
        case when p.identified then p.user_id else coalesce(l.user_id, p.user_id) end as person
    from parsed_records as p
    left join day_links as l using (anonymous_id)
    where p.reason is null
) as p
left join ranked_copies r on r.staged_row = p.staged_row
-- A left join: a missing key would fail the NOT NULL, never drop the record.
left join user_keys k on k.user_id = p.person;

-- Copies from other days whose fate this day changed (usually none).
update event_copies c
set kept = r.kept
from ranked_copies r
where c.event_id = r.event_id and c.arrival_date = r.arrival_date
  and c.source_file = r.source_file and c.line_no = r.line_no
  and c.arrival_date <> $arrival_date and c.kept <> r.kept
  and c.arrival_date between $history_first and $history_last;

delete from quarantine
where (arrival_date = $arrival_date and reason <> 'duplicate_event_id')
   or (reason = 'duplicate_event_id' and event_id in (select event_id from affected_ids));

insert into quarantine
select $arrival_date, source_file, line_no, reason, detail, raw, null
from parsed_records
where reason is not null;

-- Every copy that is not kept is one of ranked_copies (its id has several copies); its raw
-- text is the staged record's, or that of its copy on another day.
insert into quarantine
select c.arrival_date, c.source_file, c.line_no, 'duplicate_event_id',
       'event_id ' || c.event_id || ': the copy kept arrived ' || w.arrival_date::varchar
           || ' in ' || w.source_file || ' line ' || w.line_no::varchar,
       coalesce(p.raw, o.raw), c.event_id
from ranked_copies as c
join ranked_copies as w on w.event_id = c.event_id and w.kept
left join parsed_records as p on p.rowid = c.staged_row
left join other_copies as o
    on c.staged_row is null and o.event_id = c.event_id and o.arrival_date = c.arrival_date
    and o.source_file = c.source_file and o.line_no = c.line_no
where not c.kept;

insert into ingest_log
select
    $arrival_date,
    $files,
    -- One parsed row per record read.
    (select count(*) from parsed_records),
    (select count(*) from events where arrival_date = $arrival_date),
    (select count(*) from quarantine where arrival_date = $arrival_date),
    (select count(*) from quarantine
      where arrival_date = $arrival_date and reason = 'duplicate_event_id'),
    $started_at,
    $finished_at,
    $unreadable_files;

