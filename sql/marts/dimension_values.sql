-- sql/marts/dimension_values.sql: the kept values of each configured dimension (CONTRACT §3
-- Breakdowns; an extra table): per dimension, the $dimension_limit values with the most
-- distinct users over the whole history, ties by value. Every other value is the segment
-- 'other' in daily_metrics, funnel_steps, cohorts and anomalies, which all join this one table,
-- so they agree. A missing or empty value is 'unknown': never a row here, never counted toward
-- the limit. `values_seen` (the dimension's distinct values in all) tells whether any value is
-- folded into 'other' (assets/marts/dimensions.py).
-- needs: macros/segments.sql
create or replace table dimension_values as
with user_values as (
    -- One row per user and combination of values: far fewer rows than events.
    select distinct user_id, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
    from dimensioned('events', $dimensions)
),
value_users as (
    select slot.dimension, slot.value, count(distinct user_id) as users
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
    )
    where coalesce(slot.value, '') <> ''
    group by all
),
ranked as (
    select
        *,
        row_number() over (partition by dimension order by users desc, value) as rank,
        count(*) over (partition by dimension) as values_seen
    from value_users
)
select dimension, value, users::bigint as users, rank::integer as rank,
    values_seen::bigint as values_seen
from ranked
where rank <= $dimension_limit
order by dimension, rank;
