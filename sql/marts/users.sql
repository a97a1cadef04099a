-- sql/marts/users.sql: one row per user (CONTRACT §3 users), rebuilt from every event and
-- session (build sessions first); the reference that users_update.sql must equal.
-- needs: macros/user_rows.sql
create or replace table users as
select * from user_rows('events', 'sessions', $conversion_event);
