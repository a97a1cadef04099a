-- sql/intermediate/cohort_cells.sql: the internal tables the cohorts are counted from, built
-- from every user's rows (cohort_user_rows.sql): cohort_members and cohort_user_periods (those
-- rows, kept), cohort_cells (per cohort, segment and period: active users and revenue) and
-- cohort_segment_sizes (per cohort and segment: users), and cohort_segment_values (the kept
-- values the segments were named with: assets/marts/cohorts.py rebuilds all of these when one
-- is spelt otherwise since). cohort_cells_update.sql keeps them current from the changed
-- persons only.
create or replace table cohort_members as
select * from cohort_member_rows;

create or replace table cohort_user_periods as
select * from cohort_period_rows;

create or replace table cohort_cells as
select
    m.cohort_granularity,
    m.cohort_start,
    m.dimension_no,
    m.segment,
    p.period_index,
    count(*) as active_users,
    coalesce(sum(p.revenue), 0)::decimal(38, 9) as revenue
from cohort_user_periods as p
join cohort_members as m using (cohort_granularity, user_id)
group by all;

create or replace table cohort_segment_sizes as
select cohort_granularity, cohort_start, dimension_no, segment, count(*) as cohort_users
from cohort_members
group by all;

create or replace table cohort_segment_values as
select dimension, key, value from dimension_values;
