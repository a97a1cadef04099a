-- sql/staging/store_clean_events.sql: store events that need no validation (tests and
-- benchmarks generate them) as ingest stores valid records: their users keyed, each event a
-- kept copy. $staged names a table with the `events` columns (sql/staging/tables.sql, whose
-- new_user_keys macro this needs); the event ids must be new.
-- needs: macros/change_numbers.sql
insert into user_keys select * from new_user_keys($staged);

insert into event_copies by name
-- Identified, sent under their own id: distinct_id stays empty, as load_partition.sql stores
-- such copies (identified_sent_id in macros/identity.sql); `events` reads it as user_id.
select s.*, null as raw, true as kept, k.user_key, null as distinct_id, true as identified
from query_table($staged) as s
left join user_keys as k using (user_id)
-- The generated order, so that the file's layout does not depend on the join.
order by s.line_no;

-- Their (person, day) pairs are new to `events`: the marts' incremental builds update them.
insert into mart_changes
select next_change_no(), 'events', user_id, event_date
from (select distinct user_id, event_date from query_table($staged));
