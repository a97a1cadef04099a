-- sql/staging/migrate_user_keys.sql: key the events of a warehouse written before user keys
-- existed (tables.sql added the column, empty). prepare_base_schema (pipelines/warehouse.py)
-- runs it while event_copies.user_key may still be NULL; safe to stop half-way, the next run
-- finishes the job.
create or replace temp view unkeyed_copies as
select user_id from event_copies where user_key is null;

insert into user_keys select * from new_user_keys('unkeyed_copies');

update event_copies as c
set user_key = k.user_key
from user_keys as k
where c.user_key is null and k.user_id = c.user_id;

alter table event_copies alter column user_key set not null;
