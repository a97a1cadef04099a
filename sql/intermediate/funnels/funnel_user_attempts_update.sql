-- sql/intermediate/funnels/funnel_user_attempts_update.sql: bring funnel_user_attempts up to
-- date (instead of funnel_user_attempts.sql, the reference): the attempts of the persons whose
-- events changed (funnel_changed_users, funnel_copies_update.sql) are replaced by those the
-- funnel models just computed from their events (funnel_attempt_rows).
delete from funnel_user_attempts
where user_id in (select user_id from funnel_changed_users);

insert into funnel_user_attempts
select * from funnel_attempt_rows;
