-- sql/intermediate/funnels/funnel_advance.sql: take the paths of one ordered or strict funnel one
-- step further (CONTRACT §3 Funnel semantics). Needs funnel_config, funnel_occurrences and
-- funnel_paths.sql; run once per funnel and step, $funnel and $step_index = 3, 4, ...: the step's
-- event, window, order mode and prior_same come from funnel_config.
--
-- Step k is the earliest occurrence of its event at or after the path's step k-1 time (ties
-- included) that no earlier step of the attempt already used, no later than anchor_ts + window
-- (inclusive); strict funnels also require that no event of the user lies strictly between the
-- two. Each path that makes it gets a new row with one more time; the others simply stop.
-- needs: macros/step_occurrences.sql
insert into funnel_paths
with step_k as materialized (
    -- The step's definition as this model needs it: one row.
    select prior_same, window_interval, order_mode = 'strict' as strict
    from funnel_config
    where funnel = $funnel and step_index = $step_index
),
frontier as (
    select
        p.*,
        p.step_ts[-1] as lower_ts,
        -- One occurrence fills at most one step: earlier steps with this event name matched at
        -- exactly lower_ts used those occurrences (earlier ones lie before lower_ts anyway).
        len(list_filter(s.prior_same, lambda j: p.step_ts[j] = p.step_ts[-1])) as used_at_lower,
        s.window_interval,
        s.strict
    from funnel_paths as p
    cross join step_k as s
    where p.funnel = $funnel and len(p.step_ts) = $step_index - 1
),
looked as (
    select
        f.*,
        -- All occurrences at the first time at or after lower_ts already used: the next time.
        if(f.used_at_lower < o.n_at, o.ts, o.next_ts) as match_ts,
        if(f.used_at_lower < o.n_at, o.prev_any_ts, o.next_prev_any_ts) as match_prev_any_ts
    from frontier as f
    asof join step_occurrences($funnel, $step_index) as o
        on o.user_key = f.user_key and o.ts >= f.lower_ts
)
select
    funnel,
    user_key,
    anchor_ts,
    list_append(step_ts, match_ts),
    entries,
    false
from looked
where
    match_ts <= anchor_ts + window_interval
    and (not strict or match_ts = lower_ts or match_prev_any_ts <= lower_ts);
