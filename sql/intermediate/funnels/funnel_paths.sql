-- sql/intermediate/funnels/funnel_paths.sql: start the paths of one ordered or strict funnel:
-- every attempt's step 2 (CONTRACT §3 Funnel semantics). Needs funnel_config, funnel_occurrences
-- and funnel_match_tables (which empties funnel_paths); run once per funnel, named by $funnel:
-- its steps, window and order mode come from funnel_config, so names are data, never SQL text.
-- funnel_advance.sql then takes the paths through steps 3, 4, ...
--
-- A row of funnel_paths says "this path reached step len(step_ts)": an attempt, or a set of
-- equivalent attempts, with its matched step times step_ts = [T1, ..., Tk] and its entry events
-- (`entries`: time, platform, channel). An attempt starts at every step-1 event (T1). Step 2 is
-- the earliest occurrence of its event at or after T1 (ties included; the entry itself excluded
-- when steps 1 and 2 share a name: one occurrence fills at most one step), no later than
-- T1 + window (inclusive). Strict funnels also require that no event of the user lies strictly
-- between T1 and T2 (in time).
--
-- This is the only model that looks at every attempt, so it keeps the rest small:
-- - Ordered attempts that match the same step-2 state (same T2, and whether T1 = T2) share every
--   later match (the rest of the chain depends only on that state): they become one path whose
--   anchor_ts is their latest entry time (the widest window, hence the furthest step of the
--   group), keeping every member in `entries`. funnel_attempts.sql picks the counted one.
--   Strict attempts are not merged (the step-2 break check depends on the entry time); only
--   those whose next event is step 2 survive, so they are few.
-- - Every user also gets a one-step path with their first entry (by time; `first_tied` when
--   another entry has the same time, for funnel_attempts.sql to decide by event id).
--
-- The event id (a long string) is not carried along: funnel_attempts.sql looks it up for ties.
-- needs: macros/step_occurrences.sql
insert into funnel_paths
with step_2 as materialized (
    -- The funnel's definition as this model needs it: one row.
    select
        e.step as entry_step,
        -- The entry itself is used when step 1 has the same name (1), else not (0).
        list_contains(s.prior_same, 1)::integer as used_by_entry,
        s.window_interval,
        s.order_mode = 'strict' as strict
    from funnel_config as s
    join funnel_config as e on e.funnel = s.funnel and e.step_index = 1
    where s.funnel = $funnel and s.step_index = 2
),
attempts as not materialized (
    -- Read twice (the join, the first entries): scanning again is cheaper than keeping it.
    select user_key, ts as anchor_ts, platform, channel
    from keyed_events
    where event in (select entry_step from step_2)
),
looked as (
    select
        a.*,
        -- The entry itself is used when step 1 has the same name: take the next occurrence.
        if(s.used_by_entry < o.n_at, o.ts, o.next_ts) as match_ts,
        if(s.used_by_entry < o.n_at, o.prev_any_ts, o.next_prev_any_ts) as match_prev_any_ts,
        s.window_interval,
        s.strict
    from attempts as a
    asof join step_occurrences($funnel, 2) as o
        on o.user_key = a.user_key and o.ts >= a.anchor_ts
    cross join step_2 as s
),
reached as (
    select *
    from looked
    where
        match_ts <= anchor_ts + window_interval
        and (not strict or match_ts = anchor_ts or match_prev_any_ts <= anchor_ts)
),
firsts as (
    -- Every user's first entry, straight from the events (cheaper than from the join).
    select
        user_key,
        arg_min({'ts': anchor_ts, 'platform': platform, 'channel': channel}, anchor_ts) as entry,
        count(*) > 1 and min(anchor_ts, 2)[1] = min(anchor_ts, 2)[2] as first_tied
    from attempts
    group by user_key
)
-- One path per state (strict: per entry time too), holding the latest entry time and every
-- member.
select
    $funnel as funnel,
    user_key,
    max(anchor_ts) as anchor_ts,
    [max(anchor_ts), match_ts] as step_ts,
    list({'ts': anchor_ts, 'platform': platform, 'channel': channel}) as entries,
    false as first_tied
from reached
group by user_key, match_ts, anchor_ts = match_ts, if(strict, anchor_ts, null)
union all
-- The one-step path of every user: their first entry.
select $funnel, user_key, entry.ts, [entry.ts], [entry], first_tied
from firsts;
