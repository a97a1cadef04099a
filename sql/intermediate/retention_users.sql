-- sql/intermediate/retention_users.sql: the internal table retention_users, every user's rows
-- of retention_user_rows.sql (their cohort and the periods they returned in, per definition
-- and granularity), built from every event. retention.sql counts the cohorts from it;
-- retention_users_update.sql keeps it current from the changed persons only.
create or replace table retention_users as
select * from retention_user_rows
order by definition, granularity, user_id;
