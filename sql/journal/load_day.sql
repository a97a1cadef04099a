-- sql/journal/load_day.sql: what the load of $arrival_date changed, for the publish journal
-- (pipelines/journal.py). Runs at the end of the day's transaction, after load_partition.sql
-- and resolve_identities.sql, and reads the change sets they keep in temp tables:
-- - event_copies and quarantine: the day's rows; those of the other days that hold a copy of
--   an event id the day held or brings (other_copies: their `kept` and their duplicate rows
--   in quarantine may change); and the days of the copies whose person the load changed
--   (resolve_identities.sql's `reattributed`, by row id, which an update keeps). Keyed by
--   arrival day, which a row never changes: the catch-up replaces those days whole, a
--   superset of what changed.
-- - identities: the anonymous ids the load may re-link; user_keys: the users it loaded.
create or replace temp table journal_load_days as
select $arrival_date::date as arrival_date
union
select arrival_date from other_copies
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
from loaded_users
where user_id is not null;
