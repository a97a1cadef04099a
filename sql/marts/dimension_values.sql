-- sql/marts/dimension_values.sql: the kept values of each configured dimension (CONTRACT §3
-- Breakdowns; an extra table): per dimension, the $dimension_limit values with the most
-- distinct users over the whole history, ties by value. Every other value is the segment
-- 'other' in daily_metrics, funnel_steps, cohorts and anomalies, which all join this one table,
-- so they agree. A missing or empty value is 'unknown': never a row here, never counted toward
-- the limit. `values_seen` (the dimension's distinct values in all) tells whether any value is
-- folded into 'other' (assets/marts/dimensions.py). A lifted column's values that differ only
-- in case ("iOS", "ios") are one value, spelt as most of its users sent it; `key` is what the
-- marts join on (segment_key).
-- needs: macros/segments.sql
create or replace table dimension_values as
with user_values as (
    -- One row per user and combination of values: far fewer rows than events.
    select distinct user_id, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
    from dimensioned('events', $dimensions)
),
user_slots as (
    -- One row per user, dimension and raw value, with the value's key (segment_key: the
    -- lifted columns' values without their case).
    select
        u.user_id,
        u.slot.dimension,
        u.slot.value,
        segment_key(d.spec, u.slot.value) as key
    from (
        select
            user_id,
            unnest(
                dimension_slots(
                    $dimensions,
                    value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
                )
            ) as slot
        from user_values
    ) as u
    join (select unnest($dimensions) as spec) as d on d.spec.dimension = u.slot.dimension
    where coalesce(u.slot.value, '') <> ''
),
key_users as (
    select dimension, key, count(distinct user_id) as users
    from user_slots
    group by all
),
spellings as (
    -- A key's spelling: the one with the most users ("iOS" over "ios" when more users sent
    -- it), ties by value, so data with one spelling per value keeps it.
    select dimension, key, arg_min(value, (-users, value)) as value
    from (
        select dimension, key, value, count(distinct user_id) as users
        from user_slots
        group by all
    )
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
