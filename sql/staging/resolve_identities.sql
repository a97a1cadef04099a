-- sql/staging/resolve_identities.sql: CONTRACT §2 Identity, after load_partition.sql and in
-- the same transaction, for the anonymous ids the load touched (touched_anonymous: those of the
-- day's copies before the load; those of every copy whose event id the load re-decided, the
-- day's new copies and load_partition.sql's other_copies, are added here), so its cost follows
-- the day, not the history.
--
-- A link comes from the kept copies that carry both an anonymous and an identified id: the
-- earliest by event time (then the smallest user id) wins. Then every copy without an
-- identified id belongs to its anonymous id's user, else to the id it was sent under; only
-- copies whose person changed are written (a new link re-attributes the anonymous events of
-- earlier days, a lost link gives them back).
-- needs: macros/identity.sql
insert into touched_anonymous
select anonymous_id from event_copies
where arrival_date = $arrival_date and anonymous_id is not null
union
select anonymous_id from other_copies
where anonymous_id is not null;

create or replace temp view link_candidates as
select anonymous_id, user_id, ts, arrival_date
from event_copies
where anonymous_id in (select anonymous_id from touched_anonymous)
  and kept and identified;

create or replace temp table linked as select * from winning_links('link_candidates');

delete from identities where anonymous_id in (select anonymous_id from touched_anonymous);
insert into identities select * from linked;

create or replace temp table reattributed as
select c.rowid as copy_row, coalesce(l.user_id, c.distinct_id) as person
from event_copies as c
left join linked as l using (anonymous_id)
where c.anonymous_id in (select anonymous_id from touched_anonymous)
  and c.identified = false
  and c.user_id <> coalesce(l.user_id, c.distinct_id);

-- The persons and days whose events the re-attribution moves, old and new person (kept copies
-- only: the others are not in `events`), for record_changes.sql.
create or replace temp table reattributed_events as
select c.user_id, c.event_date
from event_copies as c
join reattributed as r on r.copy_row = c.rowid
where c.kept
union
select r.person, c.event_date
from event_copies as c
join reattributed as r on r.copy_row = c.rowid
where c.kept;

-- Every person already has a key: a linked user from its identified copies, the id as sent from
-- the copy's own load.
update event_copies as c
set user_id = r.person, user_key = r.user_key
from (
    select r.*, k.user_key
    from reattributed as r
    join user_keys as k on k.user_id = r.person
) as r
where c.rowid = r.copy_row;
