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
