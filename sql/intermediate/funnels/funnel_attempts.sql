-- sql/intermediate/funnels/funnel_attempts.sql: temp table funnel_attempts, the counted attempt
-- of every user in every funnel (CONTRACT §3 Funnel semantics). Needs funnel_config,
-- funnel_exclusions, funnel_events and the tables of funnel_match_tables.sql, filled by the
-- matching models (funnel_paths, funnel_chained, funnel_unordered).
-- entry_date is the day of the entry in the project zone ($timezone).
-- needs: macros/local_time.sql
-- One row per funnel and user with at least one counted attempt:
--   furthest_step   the furthest step any of the user's counted attempts reaches;
--   entry_ts, entry_date, platform, channel
--                   the counted attempt: the earliest attempt reaching furthest_step (entry
--                   events at the same time are ordered by event_id); its entry event gives the
--                   segment (platform/channel, NULL counted as 'unknown');
--   step_ts         the counted attempt's matched times [T1, ..., T_furthest] (for unordered
--                   funnels: the times of its completed steps, sorted).
--
-- Ordered and strict (funnel_paths): paths with their full chain and their entry events, plus
-- one-step paths. A path reaching step F holds the attempts of its entries from T_F - window on:
-- matching is monotone in the entry time (a later entry never matches any step earlier), so
-- every entry of the path from that time on reaches T_F in time. The counted attempt is the
-- earliest (time, event id) such entry over the paths reaching the furthest step.
-- Exclusions (funnels with some are not merged: a path is one entry time): a path whose last
-- row reached to_step with an exclusion event strictly between its from_step and to_step times
-- is dropped with all its rows; the one-step paths are entries that reach no step 2, so a user
-- whose every attempt is excluded has no row.
-- Ordered with distinct step events: funnel_chain.sql has chosen already (exclusions included).
-- Unordered: funnel_unordered.sql.
create or replace temp table funnel_attempts as
with modes as (
    select distinct funnel, order_mode, window_interval from funnel_config
),
path_ends as (
    -- In funnels with exclusions, each attempt's last row: how far it got.
    select funnel, user_key, path_id, arg_max(step_ts, len(step_ts)) as step_ts
    from funnel_paths
    where path_id is not null and funnel in (select funnel from funnel_exclusions)
    group by funnel, user_key, path_id
),
excluded_paths as (
    -- The latest exclusion event before the to_step time, if after the from_step time.
    select distinct b.funnel, b.path_id
    from (
        select
            p.funnel,
            p.user_key,
            p.path_id,
            x.matcher,
            p.step_ts[x.from_step] as from_ts,
            p.step_ts[x.to_step] as to_ts
        from path_ends as p
        join funnel_exclusions as x on x.funnel = p.funnel and x.to_step <= len(p.step_ts)
    ) as b
    asof join funnel_events as o
        on o.matcher = b.matcher and o.user_key = b.user_key and o.ts < b.to_ts
    where o.ts > b.from_ts
),
counted_paths as (
    select p.*
    from funnel_paths as p
    anti join excluded_paths as x on x.funnel = p.funnel and x.path_id = p.path_id
),
furthest_paths as (
    select funnel, user_key, max(len(step_ts)) as furthest
    from counted_paths
    group by funnel, user_key
),
path_candidates as (
    -- Each path reaching the user's furthest step, with its earliest entry that reaches it.
    select
        p.funnel,
        p.user_key,
        p.step_ts,
        list_min(list_filter(p.entries, lambda e: e.ts >= p.step_ts[-1] - m.window_interval))
            as entry
    from counted_paths as p
    join furthest_paths as f
        on f.funnel = p.funnel and f.user_key = p.user_key and len(p.step_ts) = f.furthest
    join modes as m on m.funnel = p.funnel
),
path_counted as (
    -- The earliest (time, event id) entry of them all; its path's later times.
    select
        funnel,
        user_key,
        {'ts': min(entry).ts, 'platform': min(entry).platform, 'channel': min(entry).channel}
            as entry,
        list_concat([min(entry).ts], arg_min(step_ts, entry)[2:]) as step_ts
    from path_candidates
    group by funnel, user_key
),
tied_entries as materialized (
    -- Events of step-1 names at the times of simultaneous chained entries. Filtering the events
    -- on the time alone first is several times cheaper than joining every entry event on user
    -- and time (or reading funnel_events, whose union the filter does not pass).
    select user_key, ts, event, event_id, platform, channel, copy_row
    from funnel_copies
    where event in (select event from funnel_config where step_index = 1)
        and ts in (select entry.ts from funnel_chained where tied)
),
untied as (
    -- Rare: simultaneous entry events. Look them up (those step 1's `where` matches) and keep
    -- the smallest event id.
    select
        c.funnel,
        c.user_key,
        min({'event_id': e.event_id, 'platform': e.platform, 'channel': e.channel}) as entry
    from tied_entries as e
    join funnel_chained as c on c.tied and c.user_key = e.user_key and c.entry.ts = e.ts
    join funnel_config as k on k.funnel = c.funnel and k.step_index = 1 and k.event = e.event
    left join funnel_filtered_events as f on f.matcher = k.matcher and f.copy_row = e.copy_row
    where len(k.filters) = 0 or f.copy_row is not null
    group by c.funnel, c.user_key
),
chained_counted as (
    select
        c.funnel,
        c.user_key,
        {
            'ts': c.entry.ts,
            'platform': if(u.entry is null, c.entry.platform, u.entry.platform),
            'channel': if(u.entry is null, c.entry.channel, u.entry.channel)
        } as entry,
        c.step_ts
    from funnel_chained as c
    left join untied as u using (funnel, user_key)
),
counted as (
    select * from path_counted
    union all
    select * from chained_counted
    union all
    select funnel, user_key, entry, step_ts from funnel_unordered
)
select
    c.funnel,
    k.user_id,
    len(c.step_ts)::integer as furthest_step,
    c.entry.ts as entry_ts,
    local_date(c.entry.ts, $timezone) as entry_date,
    coalesce(c.entry.platform, 'unknown') as platform,
    coalesce(c.entry.channel, 'unknown') as channel,
    c.step_ts
from counted as c
-- The models match users on their key (keyed_events); the table names them.
join user_keys as k using (user_key);
