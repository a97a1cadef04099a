-- sql/journal/load_days.sql: what the load of the arrival days $days changed when they were
-- replaced together (staging/append_days.sql), for the publish journal (pipelines/journal.py):
-- the union of what sql/journal/load_day.sql journals for each of them, from the batch's
-- change sets (the days of the copies of every event id the batch re-decided, copy_days.sql;
-- of the stored copies it re-attributed; the anonymous ids it touched; the users it loaded).
create or replace temp table journal_load_days as
select unnest($days::date[]) as arrival_date
union
select arrival_date from copy_days
union
select arrival_date from event_copies
where rowid in (select copy_row from reattributed);

insert into publish_journal
select t.table_name, 'arrival_date', d.arrival_date::varchar
from journal_load_days as d, (values ('event_copies'), ('quarantine')) as t(table_name);

insert into publish_journal
select distinct 'identities', 'anonymous_id', anonymous_id
from touched_anonymous
where anonymous_id is not null;

insert into publish_journal
select distinct 'user_keys', 'user_id', user_id
from batch_users
where user_id is not null;
