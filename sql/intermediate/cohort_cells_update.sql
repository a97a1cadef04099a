-- sql/intermediate/cohort_cells_update.sql: bring the tables of cohort_cells.sql up to date
-- (instead of rebuilding them, the reference): the changed persons (cohort_changed_users) are
-- taken out of the cells and sizes with their kept rows, their rows are replaced by those
-- cohort_user_rows.sql just computed, and they are counted in again. Counts and DECIMAL
-- revenue add and subtract exactly, so a cell equals its count from every user; a cell or a
-- size that falls to no user is dropped, as a rebuild would not have it.
create or replace temp table cohort_cell_changes as
select cohort_granularity, cohort_start, dimension_no, segment, period_index,
    sum(active_users)::bigint as active_users, sum(revenue) as revenue
from (
    select
        m.cohort_granularity,
        m.cohort_start,
        m.dimension_no,
        m.segment,
        p.period_index,
        -count(*) as active_users,
        -coalesce(sum(p.revenue), 0) as revenue
    from cohort_user_periods as p
    join cohort_members as m using (cohort_granularity, user_id)
    where p.user_id in (select user_id from cohort_changed_users)
    group by all
    union all
    select
        m.cohort_granularity,
        m.cohort_start,
        m.dimension_no,
        m.segment,
        p.period_index,
        count(*),
        coalesce(sum(p.revenue), 0)
    from cohort_period_rows as p
    join cohort_member_rows as m using (cohort_granularity, user_id)
    group by all
)
group by all;

create or replace temp table cohort_size_changes as
select cohort_granularity, cohort_start, dimension_no, segment, sum(users)::bigint as cohort_users
from (
    select cohort_granularity, cohort_start, dimension_no, segment, -count(*) as users
    from cohort_members
    where user_id in (select user_id from cohort_changed_users)
    group by all
    union all
    select cohort_granularity, cohort_start, dimension_no, segment, count(*)
    from cohort_member_rows
    group by all
)
group by all;

delete from cohort_members where user_id in (select user_id from cohort_changed_users);
insert into cohort_members select * from cohort_member_rows;

delete from cohort_user_periods where user_id in (select user_id from cohort_changed_users);
insert into cohort_user_periods select * from cohort_period_rows;

create or replace table cohort_cells as
select
    cohort_granularity,
    cohort_start,
    dimension_no,
    segment,
    period_index,
    sum(active_users)::bigint as active_users,
    sum(revenue)::decimal(38, 9) as revenue
from (
    select * from cohort_cells
    union all
    select * from cohort_cell_changes
)
group by all
having sum(active_users) <> 0;

create or replace table cohort_segment_sizes as
select
    cohort_granularity, cohort_start, dimension_no, segment, sum(cohort_users)::bigint as cohort_users
from (
    select * from cohort_segment_sizes
    union all
    select * from cohort_size_changes
)
group by all
having sum(cohort_users) <> 0;

-- New kept values (the ones counted with are unchanged, assets/marts/cohorts.py).
create or replace table cohort_segment_values as
select dimension, key, value from dimension_values;
