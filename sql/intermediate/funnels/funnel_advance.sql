-- sql/intermediate/funnels/funnel_advance.sql: take the paths of one ordered or strict funnel one
-- step further (CONTRACT §3 Funnel semantics). Needs funnel_config, funnel_occurrences and
-- funnel_paths.sql; run once per funnel and step, $funnel and $step_index = 3, 4, ...: the step's
-- matcher, window and order mode come from funnel_config.
--
-- Step k is the earliest occurrence of its matcher at or after the path's step k-1 time (ties
-- included, by event id) that the attempt has not used yet, no later than anchor_ts + window
-- (inclusive); strict funnels also require that no event of the user lies strictly between the
-- two. Only occurrences at exactly the step k-1 time can have been used (every earlier step
-- matched at or before it): the path's `used`. Each path that makes it gets a new row with one
-- more time; the others simply stop.
-- needs: macros/step_occurrences.sql
insert into funnel_paths
with step_k as materialized (
    -- The step's definition as this model needs it: one row.
    select shares_event as tracked, window_interval, order_mode = 'strict' as strict
    from funnel_config
    where funnel = $funnel and step_index = $step_index
),
frontier as (
    select p.*, p.step_ts[-1] as lower_ts, s.*
    from funnel_paths as p
    cross join step_k as s
    where p.funnel = $funnel and len(p.step_ts) = $step_index - 1
),
looked as (
    select
        f.*,
        list_filter(o.ids, lambda i: not list_contains(f.used, i)) as free,
        o.ts,
        o.prev_any_ts,
        o.next_ts,
        o.next_id,
        o.next_prev_any_ts
    from frontier as f
    asof join step_occurrences($funnel, $step_index) as o
        on o.user_key = f.user_key and o.ts >= f.lower_ts
),
matched as (
    select
        *,
        if(len(free) > 0, ts, next_ts) as match_ts,
        if(len(free) > 0, free[1], next_id) as match_id,
        if(len(free) > 0, prev_any_ts, next_prev_any_ts) as match_prev_any_ts
    from looked
)
select
    funnel,
    user_key,
    path_id,
    anchor_ts,
    list_append(step_ts, match_ts),
    -- What a later step must not take again at this step's time.
    if(match_ts = lower_ts, used, []) || if(tracked, [match_id], []),
    entries
from matched
where
    match_ts <= anchor_ts + window_interval
    and (not strict or match_ts = lower_ts or match_prev_any_ts <= lower_ts);
