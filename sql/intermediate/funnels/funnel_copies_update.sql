-- sql/intermediate/funnels/funnel_copies_update.sql: temp view funnel_copies over the kept
-- copies of the persons whose events changed since $applied (mart_changes, recorded by every
-- load and by the as-of replay), with the columns of funnel_copies.sql. A person's attempts
-- depend on their own events only, so running the funnel models on these copies recomputes
-- exactly the attempts that can have changed (funnel_user_attempts_update.sql swaps them in).
-- A person left without events (re-attributed to another) has no copy here and loses their
-- attempts. The copies are read once into a temp table: every model reads them again. Copying
-- text is what this costs, so campaign, country and properties are copied only when
-- $event_fields (a step's `where` or a dimension reads them), else NULL.
create or replace temp table funnel_changed_users as
select distinct c.user_id, k.user_key
from mart_changes as c
left join user_keys as k using (user_id)
where c.change_no > $applied and c.source = 'events';

create or replace temp table funnel_changed_copies as
select
    rowid as copy_row,
    user_key,
    event_id,
    event,
    ts,
    platform,
    channel,
    if($event_fields, campaign, null) as campaign,
    if($event_fields, country, null) as country,
    if($event_fields, properties, null::json) as properties
from event_copies
where kept and user_key in (select user_key from funnel_changed_users);

create or replace temp view funnel_copies as
select * from funnel_changed_copies;
