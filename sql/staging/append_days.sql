-- sql/staging/append_days.sql: the arrival days of a range load's batch (parse_records.sql's
-- parsed_batch, $days in order) replaced together, in one transaction, when each comes after
-- every arrival day the warehouse holds (a backfill into a new warehouse, a catch-up of several
-- days): every table ends as after one load_partition.sql + resolve_identities.sql +
-- record_changes.sql per day in that order, computed in one pass instead of one per day.
--
-- Why it can: an earlier arrival day ranks first among an event id's copies, so no day of the
-- batch changes which copy of an earlier day is kept, nor what an earlier day's load counted in
-- ingest_log; and a link (CONTRACT §2 Identity) only changes on the days that bring a new
-- candidate for it, so the person each day's load gave an anonymous copy is the link as of that
-- day (link_steps). The per-day models stay the reference; tests/ingest/test_load_range.py
-- compares both on random histories.
-- needs: macros/identity.sql
-- needs: macros/change_numbers.sql

-- Every copy of the ids with several copies (copy_days.sql), ranked: the warehouse's (kept as
-- they are: they all arrived before the batch) and the batch's.
create or replace temp table ranked_copies as
with copies as (
    select event_id, arrival_date, source_file, line_no, null::bigint as staged_row
    from event_copies
    where event_id in (select event_id from copy_days)
    union all
    select event_id, arrival_date, source_file, line_no, rowid
    from parsed_batch
    where reason is null and event_id in (select event_id from copy_days)
)
select *, row_number() over (
    partition by event_id order by arrival_date, source_file, line_no
) = 1 as kept
from copies;

-- The batch's valid records with their fate (a record with no other copy is kept).
create or replace temp view batch_copies as
select p.*, p.rowid as staged_row, coalesce(r.kept, true) as kept
from parsed_batch as p
left join ranked_copies as r on r.staged_row = p.rowid
where p.reason is null;

-- The anonymous ids the days' loads touch: those of their records, and those of the stored
-- copies of the ids they re-decide (load_partition.sql's other_copies).
create or replace temp table touched_anonymous as
select anonymous_id from parsed_batch where reason is null and anonymous_id is not null
union
select anonymous_id from event_copies
where anonymous_id is not null and event_id in (select event_id from copy_days);

create or replace temp table link_candidates_batch as
select anonymous_id, user_id, ts, arrival_date
from event_copies
where kept and identified and anonymous_id in (select anonymous_id from touched_anonymous)
union all
select anonymous_id, user_id, ts, arrival_date
from batch_copies
where kept and identified and anonymous_id is not null;

-- The links once every day is loaded.
create or replace temp table linked as select * from winning_links('link_candidates_batch');

-- Each anonymous id's link as of each arrival day that brought a candidate for it (the
-- winning_links rule over the candidates that arrived by then), and the link before that day.
create or replace temp table link_steps as
select *, lag(user_id) over (partition by anonymous_id order by arrival_date) as previous_user_id
from (
    select distinct
        anonymous_id,
        arrival_date,
        arg_min(user_id, (ts, user_id)) over (
            partition by anonymous_id order by arrival_date
            range between unbounded preceding and current row
        ) as user_id
    from link_candidates_batch
    where anonymous_id <> user_id
);

-- Key the users of the loaded records as the day-by-day loads would: each day's new ids after
-- the earlier days', in user id order within a day (tables.sql new_user_keys).
create or replace temp table batch_users as
select distinct user_id from batch_copies where user_id is not null;

insert into user_keys
select
    user_id,
    ((select coalesce(max(user_key), 0) from user_keys)
        + row_number() over (order by first_day, user_id))::integer
from (
    select user_id, min(arrival_date) as first_day
    from batch_copies
    where user_id is not null
    group by user_id
)
anti join user_keys using (user_id);

-- What `events` gained per day, for the marts (record_changes.sql): each day's kept copies
-- under their person as of that day's load, and, on each day a link changed, the old and the
-- new person of the kept anonymous copies that arrived before it.
create or replace temp table anonymous_copies as
select anonymous_id, distinct_id, event_date, arrival_date
from event_copies
where kept and identified = false
  and anonymous_id in (select anonymous_id from link_steps)
union all
select anonymous_id, distinct_id, event_date, arrival_date
from batch_copies
where kept and not identified and anonymous_id in (select anonymous_id from link_steps);

create or replace temp table day_changes as
with changed_links as (
    select * from link_steps
    where arrival_date >= $first_day and user_id is distinct from previous_user_id
),
moved as (
    select
        s.arrival_date as change_day,
        coalesce(s.previous_user_id, a.distinct_id) as before,
        coalesce(s.user_id, a.distinct_id) as after,
        a.event_date
    from changed_links as s
    join anonymous_copies as a
        on a.anonymous_id = s.anonymous_id and a.arrival_date < s.arrival_date
)
select
    c.arrival_date as change_day,
    case when c.identified then c.user_id else coalesce(s.user_id, c.user_id) end as user_id,
    c.event_date
from (select * from batch_copies where kept) as c
asof left join link_steps as s
    on s.anonymous_id = c.anonymous_id and s.arrival_date <= c.arrival_date
union
select change_day, before, event_date from moved where before <> after
union
select change_day, after, event_date from moved where before <> after;

-- Each day's changes under the number its own load would have drawn: a day that changed
-- nothing drew none.
insert into mart_changes
select next_change_no() - 1 + dense_rank() over (order by change_day), 'events', user_id,
    event_date
from day_changes;

-- Stored anonymous copies whose person the batch's links change (resolve_identities.sql).
create or replace temp table reattributed as
select c.rowid as copy_row, coalesce(l.user_id, c.distinct_id) as person
from event_copies as c
left join linked as l using (anonymous_id)
where c.anonymous_id in (select anonymous_id from touched_anonymous)
  and c.identified = false
  and c.user_id <> coalesce(l.user_id, c.distinct_id);

update event_copies as c
set user_id = r.person, user_key = r.user_key
from (
    select r.*, k.user_key
    from reattributed as r
    join user_keys as k on k.user_id = r.person
) as r
where c.rowid = r.copy_row;

-- The batch's copies under their person once every day is loaded. By name: a migrated
-- warehouse has its later columns in the order they were added.
insert into event_copies by name
select p.event_id, p.person as user_id, p.event, p.ts, p.event_date, p.platform, p.channel,
       p.campaign, p.country, p.revenue, p.properties, p.arrival_date, p.source_file,
       p.line_no, p.raw, p.kept, k.user_key,
       identified_sent_id(p.identified, p.distinct_id, p.person) as distinct_id, p.anonymous_id,
       p.identified
from (
    select
        c.*,
        case when c.identified then c.user_id else coalesce(l.user_id, c.user_id) end as person
    from batch_copies as c
    left join linked as l using (anonymous_id)
) as p
-- A left join: a missing key would fail the NOT NULL, never drop the record.
left join user_keys as k on k.user_id = p.person;

delete from identities where anonymous_id in (select anonymous_id from touched_anonymous);
insert into identities select * from linked;

insert into quarantine
select arrival_date, source_file, line_no, reason, detail, raw, null
from parsed_batch
where reason is not null;

-- The batch's copies that are not kept; the warehouse's keep their rows (their kept copy
-- arrived before the batch).
insert into quarantine
select c.arrival_date, c.source_file, c.line_no, 'duplicate_event_id',
       'event_id ' || c.event_id || ': the copy kept arrived ' || w.arrival_date::varchar
           || ' in ' || w.source_file || ' line ' || w.line_no::varchar,
       p.raw, c.event_id
from ranked_copies as c
join ranked_copies as w on w.event_id = c.event_id and w.kept
join parsed_batch as p on p.rowid = c.staged_row
where not c.kept;

-- One row per staged day ($staged_days: its files), counted as its own load counted it.
insert into ingest_log
with staged as (
    select
        unnest($staged_days) as arrival_date,
        unnest($files) as files,
        unnest($unreadable_files) as unreadable_files,
        unnest($started_at) as started_at
),
records as (
    select arrival_date, count(*) as records, count(*) filter (reason is not null) as rejected
    from parsed_batch
    group by arrival_date
),
duplicates as (
    select arrival_date, count(*) as duplicates
    from ranked_copies
    where staged_row is not null and not kept
    group by arrival_date
)
select
    s.arrival_date,
    s.files,
    coalesce(r.records, 0),
    coalesce(r.records, 0) - coalesce(r.rejected, 0) - coalesce(d.duplicates, 0),
    coalesce(r.rejected, 0) + coalesce(d.duplicates, 0),
    coalesce(d.duplicates, 0),
    s.started_at,
    $finished_at,
    s.unreadable_files
from staged as s
left join records as r using (arrival_date)
left join duplicates as d using (arrival_date);
