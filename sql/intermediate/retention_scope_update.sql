-- sql/intermediate/retention_scope_update.sql: the views of retention_scope.sql over the
-- persons whose events changed since $applied (mart_changes): a user's retention rows depend on
-- their own events and `users` row only (updated first), so retention_user_rows.sql recomputes
-- exactly the rows that can have changed. A person left without events has no row here and
-- loses their rows (retention_users_update.sql). Their events are read once into a temp table.
create or replace temp table retention_changed_users as
select distinct user_id
from mart_changes
where change_no > $applied and source = 'events';

-- `events` is event_copies' kept copies; matched on the integer user key, a cheaper test.
create or replace temp table retention_changed_events as
select user_id, event, ts, event_date
from event_copies
where kept
    and user_key in (
        select k.user_key
        from user_keys as k
        where k.user_id in (select user_id from retention_changed_users)
    );

create or replace temp view retention_events as
select * from retention_changed_events;

create or replace temp view retention_people as
select user_id, first_seen_at, first_seen_date, last_seen_at
from users
where user_id in (select user_id from retention_changed_users);
