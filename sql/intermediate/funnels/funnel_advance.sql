-- sql/intermediate/funnels/funnel_advance.sql: take the paths of one ordered or strict funnel one step further
-- (CONTRACT §3 Funnel semantics). Needs funnel_paths.sql; run once per funnel and step,
-- $step_index = 3, 4, ..., with the step bound as parameters ($funnel, $step, $prior_same,
-- $window_seconds, $order_mode).
--
-- Step k is the earliest occurrence of its event at or after the path's step k-1 time (ties
-- included) that no earlier step of the attempt already used, no later than anchor_ts + window
-- (inclusive); strict funnels also require that no event of the user lies strictly between the
-- two. Each path that makes it gets a new row with one more time; the others simply stop.
insert into funnel_paths
with frontier as (
    select
        *,
        step_ts[-1] as lower_ts,
        -- One occurrence fills at most one step: earlier steps with this event name matched at
        -- exactly lower_ts used those occurrences (earlier ones lie before lower_ts anyway).
        len(list_filter($prior_same, lambda j: step_ts[j] = step_ts[-1])) as used_at_lower
    from funnel_paths
    where funnel = $funnel and len(step_ts) = $step_index - 1
),
looked as (
    select
        f.*,
        -- All occurrences at the first time at or after lower_ts already used: the next time.
        if(f.used_at_lower < o.n_at, o.ts, o.next_ts) as match_ts,
        if(f.used_at_lower < o.n_at, o.prev_any_ts, o.next_prev_any_ts) as match_prev_any_ts
    from frontier as f
    asof join step_occurrences($step) as o
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
    match_ts <= anchor_ts + to_seconds($window_seconds)
    and (
        $order_mode <> 'strict'
        or match_ts = lower_ts
        or match_prev_any_ts <= lower_ts
    );
