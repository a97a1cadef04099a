-- sql/as_of/replay_day.sql: move the as-of warehouse of pipelines/as_of.py from the end of
-- $previous to the end of $day (later). `event_copies` holds the kept copies that had arrived
-- and were dated by then (of `replay_copies`: every kept copy, raw text left out), each under
-- its person as the links arrived by then say (`replay_links`, sql/as_of/replay_links.sql);
-- `mart_changes` gets the (person, day) pairs this changes, as a load's record_changes.sql
-- would, so the marts update.
-- needs: macros/change_numbers.sql
create or replace temp table replay_links_now as
select anonymous_id, arg_max(user_id, valid_from) as user_id
from replay_links
where valid_from <= $day
group by anonymous_id;

-- Copies already in whose anonymous id a link that arrived since moves to another person
-- (resolve_identities.sql's rule: a copy without an identified id belongs to its anonymous id's
-- user, else to the id as sent).
create or replace temp table replay_moved as
select
    c.rowid as copy_row,
    c.user_id as before,
    coalesce(l.user_id, c.distinct_id) as person,
    c.event_date
from event_copies as c
left join replay_links_now as l using (anonymous_id)
where c.identified = false
  and c.anonymous_id in (
      select anonymous_id from replay_links where valid_from > $previous and valid_from <= $day
  )
  and c.user_id <> coalesce(l.user_id, c.distinct_id);

-- Copies that arrived, or came to be dated, in (previous, day]: arrived by the day and dated by
-- it, but not both by the previous day.
create or replace temp table replay_arriving as
select
    r.* replace (
        case
            when r.identified = false then coalesce(l.user_id, r.distinct_id)
            else r.user_id
        end as user_id
    )
from replay_copies as r
left join replay_links_now as l using (anonymous_id)
where r.arrival_date <= $day and r.event_date <= $day
  and not (r.arrival_date <= $previous and r.event_date <= $previous);

insert into mart_changes
select next_change_no(), 'events', user_id, event_date
from (
    select before as user_id, event_date from replay_moved
    union
    select person, event_date from replay_moved
    union
    select user_id, event_date from replay_arriving
);

update event_copies as c
set user_id = m.person, user_key = k.user_key
from replay_moved as m
join user_keys as k on k.user_id = m.person
where c.rowid = m.copy_row;

-- By name, a left join on the keys: a missing key would fail the NOT NULL, never drop a copy.
insert into event_copies by name
select a.* replace (k.user_key as user_key)
from replay_arriving as a
left join user_keys as k on k.user_id = a.user_id;

drop table replay_links_now;
drop table replay_moved;
drop table replay_arriving;
