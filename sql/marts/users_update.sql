-- sql/marts/users_update.sql: bring `users` up to date with the changes recorded since $applied
-- (loads, and the sessions update that ran before), instead of rebuilding it (users.sql, the
-- reference): the changed users' rows are computed again from their events and sessions. The
-- days whose new users changed (a user's first day or acquisition platform/channel, before and
-- after) are recorded under $change_no for daily_metrics.
-- needs: macros/user_rows.sql

create or replace temp table user_scope as
select distinct user_id
from mart_changes
where change_no > $applied and source in ('events', 'sessions');

create or replace temp view user_scope_events as
select * from events where user_id in (select user_id from user_scope);

create or replace temp view user_scope_sessions as
select * from sessions where user_id in (select user_id from user_scope);

create or replace temp table users_new as
select * from user_rows('user_scope_events', 'user_scope_sessions', $conversion_event);

insert into mart_changes
select distinct $change_no, 'users', user_id, first_seen_date
from (
    (
        select user_id, first_seen_date, acquisition_platform, acquisition_channel
        from users where user_id in (select user_id from user_scope)
        except
        select user_id, first_seen_date, acquisition_platform, acquisition_channel
        from users_new
    )
    union all
    (
        select user_id, first_seen_date, acquisition_platform, acquisition_channel
        from users_new
        except
        select user_id, first_seen_date, acquisition_platform, acquisition_channel
        from users where user_id in (select user_id from user_scope)
    )
);

delete from users where user_id in (select user_id from user_scope);

insert into users by name select * from users_new;
