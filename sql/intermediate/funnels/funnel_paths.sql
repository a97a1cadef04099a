-- sql/intermediate/funnels/funnel_paths.sql: start the paths of one ordered or strict funnel:
-- every attempt's step 2 (CONTRACT §3 Funnel semantics). Needs funnel_config, funnel_events,
-- funnel_exclusions, funnel_occurrences and funnel_match_tables (which empties funnel_paths);
-- run once per funnel, named by $funnel: its steps, window and order mode come from
-- funnel_config, so names are data, never SQL text. funnel_advance.sql then takes the paths
-- through steps 3, 4, ...
--
-- A row of funnel_paths says "this path reached step len(step_ts)": an attempt, or a set of
-- equivalent attempts, with its matched step times step_ts = [T1, ..., Tk], the occurrences it
-- used at Tk (`used`) and its entry events (`entries`: time, event id, platform, channel). An
-- attempt starts at every step-1 event (T1). Step 2 is the earliest occurrence of its matcher at
-- or after T1 (ties included, by event id) other than the entry itself (one occurrence fills at
-- most one step: page_view then page_view[path=/pricing] needs two page views), no later than
-- T1 + window (inclusive). Strict funnels also require that no event of the user lies strictly
-- between T1 and T2 (in time).
--
-- This is the only model that looks at every attempt, so it keeps the rest small:
-- - Ordered attempts that reach the same step-2 state (same T2 and the same occurrences used at
--   T2) share every later match (the rest of the chain depends only on that state): they
--   become one path whose anchor_ts is their latest entry time (the widest window, hence the
--   furthest step of the group), keeping every member in `entries`. funnel_attempts.sql picks
--   the counted one. Strict attempts are not merged (the step-2 break check depends on the
--   entry time), nor are those of a funnel with exclusions (whether an attempt is excluded
--   depends on how far it got); only those whose next event is step 2 survive in strict
--   funnels, so they are few.
-- - Every user whose attempts do not all reach step 2 also gets a one-step path: their first
--   entry (by time, then event id) among those that do not.
-- needs: macros/step_occurrences.sql
insert into funnel_paths
with step_2 as materialized (
    -- The funnel's definition as this model needs it: one row.
    select
        e.matcher as entry_matcher,
        e.shares_event as entry_tracked,
        s.shares_event as step_tracked,
        s.window_interval,
        s.order_mode = 'strict' as strict,
        s.order_mode = 'strict' or exists (
            select 1 from funnel_exclusions as x where x.funnel = s.funnel
        ) as unmerged
    from funnel_config as s
    join funnel_config as e on e.funnel = s.funnel and e.step_index = 1
    where s.funnel = $funnel and s.step_index = 2
),
attempts as materialized (
    select user_key, ts as anchor_ts, copy_row, event_id, platform, channel
    from funnel_events
    where matcher = (select entry_matcher from step_2)
),
looked as (
    select
        a.*,
        -- The entry itself may be an occurrence of step 2 (one event, two matching steps).
        list_filter(o.ids, lambda i: i <> a.copy_row) as free,
        o.ts,
        o.prev_any_ts,
        o.next_ts,
        o.next_id,
        o.next_prev_any_ts,
        s.*
    from attempts as a
    asof join step_occurrences($funnel, 2) as o
        on o.user_key = a.user_key and o.ts >= a.anchor_ts
    cross join step_2 as s
),
matched as (
    select
        *,
        if(len(free) > 0, ts, next_ts) as match_ts,
        if(len(free) > 0, free[1], next_id) as match_id,
        if(len(free) > 0, prev_any_ts, next_prev_any_ts) as match_prev_any_ts
    from looked
),
reached as (
    select
        *,
        -- What a later step of the same event must not take again at T2.
        list_sort(
            if(match_ts = anchor_ts and entry_tracked, [copy_row], [])
            || if(step_tracked, [match_id], [])
        ) as used
    from matched
    where
        match_ts <= anchor_ts + window_interval
        and (not strict or match_ts = anchor_ts or match_prev_any_ts <= anchor_ts)
),
firsts as (
    -- Every user's first entry among those that do not reach step 2.
    select
        user_key,
        min({'ts': anchor_ts, 'event_id': event_id, 'platform': platform, 'channel': channel})
            as entry
    from attempts
    where copy_row not in (select copy_row from reached)
    group by user_key
)
-- One path per state (unmerged funnels: per entry time too), holding the latest entry time and
-- every member.
select
    $funnel as funnel,
    user_key,
    row_number() over () as path_id,
    max(anchor_ts) as anchor_ts,
    [max(anchor_ts), match_ts] as step_ts,
    used,
    list({'ts': anchor_ts, 'event_id': event_id, 'platform': platform, 'channel': channel})
        as entries
from reached
group by user_key, match_ts, used, if(unmerged, anchor_ts, null)
union all
-- The one-step paths.
select $funnel, user_key, null, entry.ts, [entry.ts], [], [entry]
from firsts;
