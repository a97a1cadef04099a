-- sql/marts/dimension_values.sql: the kept values of each configured dimension (CONTRACT §3
-- Breakdowns; an extra table): per dimension, the $dimension_limit values with the most
-- distinct users over the whole history, ties by value. Every other value is the segment
-- 'other' in daily_metrics, funnel_steps, cohorts and anomalies, which all join this one table,
-- so they agree. A missing or empty value is 'unknown': never a row here, never counted toward
-- the limit. `values_seen` (the dimension's distinct values in all) tells whether any value is
-- folded into 'other' (assets/marts/dimensions.py). A lifted column's values that differ only
-- in case ("iOS", "ios") are one value, spelt as most of its users sent it; `key` is what the
-- marts join on (segment_key). Built after dimension_user_days (sql/intermediate/).
-- needs: macros/segments.sql
create or replace table dimension_values as
with user_slots as (
    -- One row per user, dimension and raw value, with the value's key (segment_key: the
    -- lifted columns' values without their case). One grouping per dimension of
    -- dimension_user_days (far fewer rows than events): several times faster than unnesting
    -- every row into its dimensions, as each grouping holds one dimension's values.
    select u.user_key, d.spec.dimension, u.value, segment_key(d.spec, u.value) as key
    from (
        select * from dimension_users('dimension_user_days', $dimensions, 1)
        union all select * from dimension_users('dimension_user_days', $dimensions, 2)
        union all select * from dimension_users('dimension_user_days', $dimensions, 3)
        union all select * from dimension_users('dimension_user_days', $dimensions, 4)
        union all select * from dimension_users('dimension_user_days', $dimensions, 5)
        union all select * from dimension_users('dimension_user_days', $dimensions, 6)
        union all select * from dimension_users('dimension_user_days', $dimensions, 7)
        union all select * from dimension_users('dimension_user_days', $dimensions, 8)
    ) as u
    join (
        select unnest($dimensions) as spec, generate_subscripts($dimensions, 1) as dimension_no
    ) as d using (dimension_no)
),
value_users as (
    -- Users per raw value: user_slots holds each (user, dimension, value) once, so a count.
    select dimension, key, value, count(*) as users
    from user_slots
    group by all
),
shared_keys as (
    -- The keys that more than one spelling maps to ("iOS", "ios"): rare, and only their
    -- users need counting distinct (a user may have sent both).
    select dimension, key
    from value_users
    group by all
    having count(*) > 1
),
key_users as (
    -- Users per key: a key of one spelling has that spelling's users; the shared keys count
    -- their users distinct. With two distinct counts over every (user, value) pair the
    -- statement took 2.6 times the CPU (10M events, four dimensions).
    select dimension, key, sum(users) as users
    from value_users
    anti join shared_keys using (dimension, key)
    group by all
    union all
    select dimension, key, count(distinct user_key) as users
    from user_slots
    semi join shared_keys using (dimension, key)
    group by all
),
spellings as (
    -- A key's spelling: the one with the most users ("iOS" over "ios" when more users sent
    -- it), ties by value, so data with one spelling per value keeps it.
    select dimension, key, arg_min(value, (-users, value)) as value
    from value_users
    group by all
),
ranked as (
    select
        k.dimension,
        k.key,
        s.value,
        k.users,
        row_number() over (partition by k.dimension order by k.users desc, s.value) as rank,
        count(*) over (partition by k.dimension) as values_seen
    from key_users as k
    join spellings as s using (dimension, key)
)
select dimension, value, users::bigint as users, rank::integer as rank,
    values_seen::bigint as values_seen, key
from ranked
where rank <= $dimension_limit
order by dimension, rank;
