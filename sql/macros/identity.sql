-- sql/macros/identity.sql: the link rule of CONTRACT §2 Identity, in one place. `candidates`
-- names a relation of records that carry both ids (anonymous_id, user_id, ts, arrival_date);
-- per anonymous id, the earliest by event time (then the smallest user id) wins, and a record
-- whose two ids are the same links nothing.
create or replace temp macro winning_links(candidates) as table
select
    anonymous_id,
    arg_min(user_id, (ts, user_id)) as user_id,
    min(ts) as linked_at,
    arg_min(arrival_date, (ts, user_id)) as arrival_date
from query_table(candidates)
where anonymous_id <> user_id
group by anonymous_id;

-- The id as sent, as event_copies stores it: NULL for an identified copy sent under its
-- person's own id (nearly every identified one), which `events` reads back as its user_id
-- (staging/tables.sql); an identified copy's person never changes, so the two cannot part.
-- A column mostly empty is about 0.07 CPU s cheaper to write for a 1M-record load.
create or replace temp macro identified_sent_id(identified, distinct_id, person) as
    case when identified and distinct_id = person then null else distinct_id end;
