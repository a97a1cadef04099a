-- sql/marts/funnel_steps.sql: one row per funnel, segment and step over the whole history
-- (CONTRACT §3 funnel_steps). Needs funnel_config, funnel_user_attempts, dimension_user_days
-- and sql/macros/segments.sql.
-- users at step k: users whose furthest step >= k, in the segment of their counted attempt's
-- entry event (first touch). conversion_from_first = users_k / users_1 and
-- conversion_from_previous = users_k / users_(k-1) are NULL when the denominator is 0, except
-- conversion_from_previous at step 1, which is 1.0 by definition. The time columns are over the
-- users reaching step k: seconds from their counted attempt's step k-1 to its step k (median
-- interpolates between the two middle values); NULL at step 1 and when nobody reached step k.
-- Segments (CONTRACT §3 Breakdowns): each configured dimension's segments of the values seen
-- in `events` ('unknown' for missing, 'other' past the kept values of dimension_values, as in
-- daily_metrics), so a segment nobody entered the funnel from shows zeros; a funnel whose first
-- step never occurs shows zeros everywhere. A user's segment is the value of their counted
-- attempt's entry event, kept with the attempt in funnel_user_attempts
-- (sql/intermediate/funnels/funnel_attempt_rows.sql).
-- needs: macros/segments.sql

-- The counted attempts with the fields of their entry event that the dimensions read.
create or replace temp view funnel_entry_fields as
select
    funnel,
    user_id,
    -- funnel_user_attempts counts a missing value as 'unknown'; here it is missing again.
    nullif(platform, 'unknown') as platform,
    nullif(channel, 'unknown') as channel,
    campaign,
    country,
    properties
from funnel_user_attempts;

create or replace table funnel_steps as
with seen as materialized (
    -- Each dimension's values in `events`, read from dimension_user_days (current whenever
    -- dimension_values is: one row per day, user and combination of values, the same values
    -- as dimensioned('events', ...) without reading every event's JSON again).
    select distinct value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
    from dimension_user_days
),
seen_values as (
    select distinct
        unnest(range(1, len($dimensions) + 1)) as dimension_no,
        unnest(
            dimension_list(
                $dimensions,
                value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
            )
        ) as value
    from seen
),
segments as (
    select 0 as dimension_no, 'all' as segment
    union
    select v.dimension_no, segment_value(v.value, k.value)
    from seen_values as v
    left join dimension_values as k
        on k.dimension = $dimensions[v.dimension_no].dimension
        and k.key = segment_key($dimensions[v.dimension_no], v.value)
),
attempt_segments as (
    -- One row per counted attempt and dimension ('all' included) with its segment.
    select funnel, user_id, 0 as dimension_no, 'all' as segment
    from funnel_user_attempts
    union all
    select funnel, user_id, dimension_no, segment
    from row_segments('funnel_entry_fields', $dimensions)
),
grid as (
    select c.funnel, s.dimension_no, s.segment, c.step_index, c.step
    from funnel_config as c
    cross join segments as s
),
reached as (
    -- One row per counted attempt and step it reached.
    select
        a.funnel,
        s.dimension_no,
        s.segment,
        k.step_index,
        if(
            k.step_index > 1,
            -- Whole microseconds: sums of integers are exact, so averages are deterministic.
            epoch_us(a.step_ts[k.step_index]) - epoch_us(a.step_ts[k.step_index - 1]),
            null
        ) as micros_from_previous
    from funnel_user_attempts as a
    join attempt_segments as s using (funnel, user_id),
        unnest(range(1, a.furthest_step + 1)) as k(step_index)
),
counted as (
    select
        funnel,
        step_index,
        dimension_no,
        segment,
        count(*) as users,
        median(micros_from_previous) / 1e6 as median_seconds_from_previous,
        avg(micros_from_previous) / 1e6 as avg_seconds_from_previous
    from reached
    group by funnel, step_index, dimension_no, segment
),
filled as (
    select
        g.funnel,
        if(g.dimension_no = 0, 'all', $dimensions[g.dimension_no].dimension) as dimension,
        g.segment,
        g.step_index,
        g.step,
        coalesce(c.users, 0)::bigint as users,
        c.median_seconds_from_previous,
        c.avg_seconds_from_previous
    from grid as g
    left join counted as c using (funnel, dimension_no, segment, step_index)
)
select
    funnel,
    dimension,
    segment,
    step_index,
    step,
    users,
    users / nullif(first_value(users) over by_segment, 0) as conversion_from_first,
    if(step_index = 1, 1.0, users / nullif(lag(users) over by_segment, 0))
        as conversion_from_previous,
    median_seconds_from_previous,
    avg_seconds_from_previous
from filled
window by_segment as (partition by funnel, dimension, segment order by step_index)
order by funnel, dimension, segment, step_index;
