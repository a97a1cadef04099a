-- sql/intermediate/cohort_scope_update.sql: the persons whose events changed since $applied
-- (mart_changes; their cohort_user_days rows and their `users` row are updated first), and
-- temp view cohort_people over their `users` rows: a user's cohort, segments and periods
-- depend on their own events only, so cohort_user_rows.sql recomputes exactly what can have
-- changed. A person left without events has no row in `users` and leaves their cohort.
create or replace temp table cohort_changed_users as
select distinct user_id
from mart_changes
where change_no > $applied and source = 'events';

create or replace temp view cohort_people as
select * from users where user_id in (select user_id from cohort_changed_users);
