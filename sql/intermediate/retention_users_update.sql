-- sql/intermediate/retention_users_update.sql: bring retention_users up to date (instead of
-- retention_users.sql, the reference): the rows of the persons whose events changed
-- (retention_changed_users, retention_scope_update.sql) are replaced by those
-- retention_user_rows.sql just computed from their events and `users` rows.
delete from retention_users
where user_id in (select user_id from retention_changed_users);

insert into retention_users
select * from retention_user_rows;
