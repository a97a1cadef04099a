-- sql/intermediate/cohort_scope.sql: temp view cohort_people, the users whose cohort rows
-- cohort_user_rows.sql computes: every user (the full build). cohort_scope_update.sql gives the
-- users whose events changed.
create or replace temp view cohort_people as
select * from users;
