-- sql/intermediate/retention_scope.sql: the temp views retention_user_rows.sql reads, over
-- every user: retention_events (`events`) and retention_people (`users`). The full build;
-- retention_scope_update.sql gives the same views over the users whose events changed.
create or replace temp view retention_events as
select user_id, event, ts, event_date from events;

create or replace temp view retention_people as
select user_id, first_seen_at, first_seen_date, last_seen_at from users;
