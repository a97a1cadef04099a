-- sql/as_of/replay_links.sql: for the reports of a range of days (pipelines/as_of.py), each
-- anonymous id's person as it changes with the arrival days. CONTRACT §2 Identity's link rule
-- (the winning_links macro of macros/identity.sql: the earliest record carrying both ids by
-- event time, then the smallest user id; a record whose two ids are the same links nothing),
-- applied for each day on which one of an anonymous id's candidates arrived to the candidates
-- arrived by then. A day's link is the row with the latest `valid_from` on or before it.
create or replace temp table replay_candidates as
select anonymous_id, user_id, ts, arrival_date
from replay_copies
where identified and anonymous_id is not null and anonymous_id <> user_id;

create or replace table replay_links as
select
    day.anonymous_id,
    day.arrival_date as valid_from,
    arg_min(c.user_id, (c.ts, c.user_id)) as user_id
from (select distinct anonymous_id, arrival_date from replay_candidates) as day
join replay_candidates as c
    on c.anonymous_id = day.anonymous_id and c.arrival_date <= day.arrival_date
group by day.anonymous_id, day.arrival_date;

drop table replay_candidates;
