-- sql/marts/funnel_steps.sql: one row per funnel, segment and step over the whole history
-- (CONTRACT §3 funnel_steps). Needs funnel_config, funnel_attempts and
-- sql/macros/segments.sql.
-- users at step k: users whose furthest step >= k, in the segment of their counted attempt's
-- entry event (first touch). conversion_from_first = users_k / users_1 and
-- conversion_from_previous = users_k / users_(k-1) are NULL when the denominator is 0, except
-- conversion_from_previous at step 1, which is 1.0 by definition. The time columns are over the
-- users reaching step k: seconds from their counted attempt's step k-1 to its step k (median
-- interpolates between the two middle values); NULL at step 1 and when nobody reached step k.
-- Segments: every platform / channel seen in `events` (NULL counted as 'unknown', as in
-- daily_metrics), so a segment nobody entered the funnel from shows zeros; a funnel whose first
-- step never occurs shows zeros everywhere.
-- needs: macros/segments.sql
create or replace table funnel_steps as
with seen as materialized (
    -- One scan of the events for both dimensions.
    select distinct
        coalesce(platform, 'unknown') as platform,
        coalesce(channel, 'unknown') as channel
    from events
),
segments as (
    select 'all' as dimension, 'all' as segment
    union all
    select distinct 'platform', platform from seen
    union all
    select distinct 'channel', channel from seen
),
grid as (
    select c.funnel, s.dimension, s.segment, c.step_index, c.step
    from funnel_config as c
    cross join segments as s
),
reached as (
    -- One row per counted attempt and step it reached.
    select
        a.funnel,
        a.platform,
        a.channel,
        k.step_index,
        if(
            k.step_index > 1,
            -- Whole microseconds: sums of integers are exact, so averages are deterministic.
            epoch_us(a.step_ts[k.step_index]) - epoch_us(a.step_ts[k.step_index - 1]),
            null
        ) as micros_from_previous
    from funnel_attempts as a, unnest(range(1, a.furthest_step + 1)) as k(step_index)
),
counted as (
    select
        funnel,
        step_index,
        segment_dimension(grouping(platform) = 0, grouping(channel) = 0) as dimension,
        coalesce(platform, channel, 'all') as segment,
        count(*) as users,
        median(micros_from_previous) / 1e6 as median_seconds_from_previous,
        avg(micros_from_previous) / 1e6 as avg_seconds_from_previous
    from reached
    group by grouping sets (
        (funnel, step_index), (funnel, step_index, platform), (funnel, step_index, channel)
    )
),
filled as (
    select
        g.funnel,
        g.dimension,
        g.segment,
        g.step_index,
        g.step,
        coalesce(c.users, 0)::bigint as users,
        c.median_seconds_from_previous,
        c.avg_seconds_from_previous
    from grid as g
    left join counted as c using (funnel, dimension, segment, step_index)
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
