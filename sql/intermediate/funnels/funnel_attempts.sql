-- sql/intermediate/funnels/funnel_attempts.sql: temp table funnel_attempts, the counted attempt
-- of every user in every funnel (CONTRACT §3 Funnel semantics). Needs funnel_config and the
-- tables of funnel_match_tables.sql, filled by the matching models (funnel_paths,
-- funnel_chained, funnel_unordered).
-- One row per funnel and user with at least one attempt:
--   furthest_step   the furthest step any of the user's attempts reaches;
--   entry_ts, entry_date, platform, channel
--                   the counted attempt: the earliest attempt reaching furthest_step (entry
--                   events at the same time are ordered by event_id); its entry event gives the
--                   segment (platform/channel, NULL counted as 'unknown');
--   step_ts         the counted attempt's matched times [T1, ..., T_furthest] (for unordered
--                   funnels: the times of its completed steps, sorted).
--
-- Ordered: funnel_paths holds merged paths with their full chain and their entry events, plus a
-- one-step path per user with their first entry. The earliest path (in chain order) reaching the
-- furthest step F holds the counted attempt, and that attempt is the path's first entry at or
-- after T_F - window: matching is monotone in the entry time (a later entry never matches any
-- step earlier), so every entry of the path from that time on reaches T_F in time, and no
-- earlier path reaches F at all.
-- Strict: a path holds the attempts of one entry time; the earliest furthest path is counted.
-- Ordered with distinct steps: funnel_chain.sql.
-- Unordered: funnel_unordered.sql.
create or replace temp table funnel_attempts as
with modes as (
    select distinct funnel, order_mode, window_interval from funnel_config
),
best_paths as (
    -- Per user, the path reaching the furthest step and, among those, the earliest in chain
    -- order: by T2, then T1 < T2 before T1 = T2 (ordered paths are unique by these), then entry
    -- time (strict). (A row key: two full timestamps do not fit a packed HUGEINT, and these
    -- paths are few.)
    select
        arg_min(
            p.rowid,
            {
                'steps': -len(p.step_ts),
                't2': coalesce(p.step_ts[2], p.anchor_ts),
                'same_t1': coalesce(p.step_ts[1] = p.step_ts[2], false),
                'anchor': p.anchor_ts
            }
        ) as path
    from funnel_paths as p
    join modes as m on m.funnel = p.funnel and m.order_mode <> 'unordered'
    group by p.funnel, p.user_key
),
chosen as materialized (
    -- The counted attempt is the path's first entry that can still reach T_F within the window
    -- (strict paths and one-step paths: their own entry).
    select
        funnel,
        user_key,
        step_ts,
        entry,
        -- Other entry events at that time with another segment: the smallest event id decides.
        -- (A user's first entry comes flagged from funnel_paths.sql.)
        first_tied or (
            len(entries) > 1
            and len(
                list_distinct(
                    list_transform(
                        list_filter(entries, lambda e: e.ts = entry.ts),
                        lambda e: {'platform': e.platform, 'channel': e.channel}
                    )
                )
            ) > 1
        ) as tied
    from (
        select
            p.funnel,
            p.user_key,
            p.step_ts,
            p.entries,
            p.first_tied,
            if(
                len(p.entries) = 1,
                p.entries[1],
                list_min(
                    list_filter(p.entries, lambda e: e.ts >= p.step_ts[-1] - m.window_interval)
                )
            ) as entry
        from funnel_paths as p
        semi join best_paths as b on b.path = p.rowid
        join modes as m using (funnel)
    )
    union all
    -- Ordered funnels with distinct steps: funnel_chain.sql has chosen already.
    select funnel, user_key, step_ts, entry, tied from funnel_chained
),
tied_entries as materialized (
    -- Entry events at the times of simultaneous entries. Filtering on the time alone first
    -- is several times cheaper than joining every entry event on user and time.
    select user_key, event, ts, event_id, platform, channel
    from keyed_events
    where event in (select step from funnel_config where step_index = 1)
        and ts in (select entry.ts from chosen where tied)
),
untied as (
    -- Rare: simultaneous entry events. Look them up and keep the smallest event id.
    select
        c.funnel,
        c.user_key,
        min({'event_id': e.event_id, 'platform': e.platform, 'channel': e.channel}) as entry
    from tied_entries as e
    join chosen as c on c.tied and c.user_key = e.user_key and c.entry.ts = e.ts
    join funnel_config as k on k.funnel = c.funnel and k.step_index = 1 and k.step = e.event
    group by c.funnel, c.user_key
),
ordered_counted as (
    select
        c.funnel,
        c.user_key,
        {
            'ts': c.entry.ts,
            'platform': if(u.entry is null, c.entry.platform, u.entry.platform),
            'channel': if(u.entry is null, c.entry.channel, u.entry.channel)
        } as entry,
        list_concat([c.entry.ts], c.step_ts[2:]) as step_ts
    from chosen as c
    left join untied as u using (funnel, user_key)
),
counted as (
    select * from ordered_counted
    union all
    select funnel, user_key, entry, step_ts from funnel_unordered
)
select
    c.funnel,
    k.user_id,
    len(c.step_ts)::integer as furthest_step,
    c.entry.ts as entry_ts,
    c.entry.ts::date as entry_date,
    coalesce(c.entry.platform, 'unknown') as platform,
    coalesce(c.entry.channel, 'unknown') as channel,
    c.step_ts
from counted as c
-- The models match users on their key (keyed_events); the table names them.
join user_keys as k using (user_key);
