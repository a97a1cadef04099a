-- sql/intermediate/funnels/funnel_chain.sql: the counted attempt of every user in one ordered
-- funnel whose steps are all different events (CONTRACT §3 Funnel semantics), the common case.
-- Needs funnel_config and funnel_match_tables (which empties funnel_chained); run once per such
-- funnel, named by $funnel: its steps and window come from funnel_config. funnel_paths.sql and
-- funnel_advance.sql handle the other ordered and the strict funnels; both are checked against
-- the same pure-Python reference.
--
-- Why a second model: step-1 events are usually the most frequent ones (page views), and
-- following every attempt from each of them (funnel_paths.sql) is the cost of a funnel. With
-- distinct step names the chain after step 2 does not depend on the entry: an attempt entering
-- at T1 matches T2 = the first step-2 occurrence at or after T1, and from there T3, T4, ... are
-- the same for every attempt matching that T2. So:
-- 1. chains: for every distinct step-2 time T2 of a user, its chain [T2, T3, ...] (each the
--    earliest occurrence of the next step at or after the previous one), cut at T2 + window
--    (no attempt matching T2 entered after T2). Step 2 and later events only: few rows.
-- 2. Each entry T1 matches the T2 of the chain whose range (previous T2, T2] holds T1 - one
--    hash join on user_key with a range condition, no sorting of the entries - and reaches step
--    1 + (chain times <= T1 + window): 1 if no chain starts within the window.
-- 3. Exclusions (funnel_exclusions): per chain and exclusion whose to_step it reaches, the
--    latest exclusion event strictly before the to_step time; an entry whose attempt reaches
--    to_step is excluded when that event lies after its from_step time (its own T1 when
--    from_step is 1). Chains are few, so this costs one comparison per entry.
-- 4. Per user, the counted attempt: the furthest reach, then the earliest entry, among the
--    attempts not excluded; the first entry not excluded when none reaches step 2.
--    Simultaneous entries are flagged `tied`; funnel_attempts.sql orders them by event id.
-- Steps match their matcher's events (funnel_events.sql: an event name with its `where`).
insert into funnel_chained
with recursive funnel as materialized (
    -- The funnel's definition as this model needs it: one row.
    select matcher as entry_matcher, window_interval
    from funnel_config
    where funnel = $funnel and step_index = 1
),
later_steps as materialized (
    -- Simultaneous occurrences are alike here: one row per user, step and time.
    select e.user_key, c.step_index, e.ts
    from funnel_events as e
    join (select matcher, step_index from funnel_config where funnel = $funnel and step_index > 1)
        as c
        on c.matcher = e.matcher
    group by all
),
linked as materialized (
    -- Each occurrence with the earliest occurrence of the next step at or after it.
    select l.user_key, l.step_index, l.ts, n.ts as next_ts
    from later_steps as l
    asof left join later_steps as n
        on n.user_key = l.user_key and n.step_index = l.step_index + 1 and n.ts >= l.ts
),
chain_links (user_key, t2, previous_t2, step_ts, next_ts) as (
    select user_key, ts, lag(ts) over (partition by user_key order by ts), [ts], next_ts
    from linked
    where step_index = 2
    union all
    select c.user_key, c.t2, c.previous_t2, list_append(c.step_ts, l.ts), l.next_ts
    from chain_links as c
    join linked as l
        on l.user_key = c.user_key and l.step_index = len(c.step_ts) + 2 and l.ts = c.next_ts
    cross join funnel as f
    where l.ts <= c.t2 + f.window_interval
),
chains as materialized (
    -- With the window as columns: the join below compares them like the times.
    select
        c.user_key,
        c.t2,
        c.previous_t2,
        arg_max(c.step_ts, len(c.step_ts)) as step_ts,
        c.t2 - f.window_interval as first_entry_ts,
        f.window_interval
    from chain_links as c
    cross join funnel as f
    group by c.user_key, c.t2, c.previous_t2, f.window_interval
),
exclusion_marks as (
    -- Per chain, each exclusion whose to_step it reaches with the latest exclusion event
    -- strictly before the to_step time (none: NULL), and the from_step time (NULL when
    -- from_step is 1: that is each entry's own time).
    select
        b.user_key,
        b.t2,
        list({
            'to_step': b.to_step,
            'from_ts': b.from_ts,
            'last_ts': o.ts
        }) as marks
    from (
        select
            c.user_key,
            c.t2,
            x.matcher,
            x.to_step,
            c.step_ts[x.to_step - 1] as to_ts,
            if(x.from_step > 1, c.step_ts[x.from_step - 1], null) as from_ts
        from chains as c
        join funnel_exclusions as x
            on x.funnel = $funnel and x.to_step <= len(c.step_ts) + 1
    ) as b
    asof left join funnel_events as o
        on o.matcher = b.matcher and o.user_key = b.user_key and o.ts < b.to_ts
    group by b.user_key, b.t2
),
entries as not materialized (
    -- Read more than once: scanning again is cheaper than keeping it. The events with their
    -- row in event_copies (a rowid is only valid within one statement).
    select user_key, copy_row, ts, platform, channel
    from funnel_events
    where matcher = (select entry_matcher from funnel)
),
reached as (
    -- Entries that reach step 2 at least, with the chain they match and how far they get.
    select
        e.*,
        c.t2,
        1 + len(list_filter(c.step_ts, lambda t: t <= e.ts + c.window_interval)) as reach
    from entries as e
    join chains as c
        on c.user_key = e.user_key
        and e.ts <= c.t2
        and e.ts >= c.first_entry_ts
        -- One comparison, not an OR, so that the join evaluates it as a join condition.
        and e.ts > coalesce(c.previous_t2, '-infinity'::timestamp)
),
judged as materialized (
    -- Excluded: an exclusion event strictly between the from_step and to_step times of an
    -- attempt that reached to_step.
    select
        r.*,
        coalesce(
            list_bool_or(
                list_transform(
                    m.marks,
                    lambda k: k.to_step <= r.reach and k.last_ts > coalesce(k.from_ts, r.ts)
                )
            ),
            false
        ) as excluded
    from reached as r
    left join exclusion_marks as m on m.user_key = r.user_key and m.t2 = r.t2
),
reaches as (
    select * exclude (excluded) from judged where not excluded
),
firsts as (
    -- Every user's first entry (not excluded), the counted attempt when none reaches step 2
    -- (with no exclusion: the first entry). Two scalar
    -- minimums find it (several times faster than arg_min with a row and min(ts, 2)): the
    -- earliest time with the smallest copy_row (first_key), and with the largest (last_key).
    -- They name different rows exactly when another entry has the same time. The low 64 bits
    -- (mask 2^64 - 1, two's complement) of first_key and of -last_key are those copy_rows;
    -- the join then fetches the one row per user by its rowid.
    select
        f.user_key,
        {'ts': e.ts, 'platform': e.platform, 'channel': e.channel} as entry,
        (f.first_key & 18446744073709551615) <> (-f.last_key & 18446744073709551615) as tied
    from (
        select
            user_key,
            min(epoch_us(ts)::hugeint * 18446744073709551616 + copy_row) as first_key,
            min(epoch_us(ts)::hugeint * 18446744073709551616 - copy_row) as last_key
        from entries
        -- An excluded attempt is not counted, not even as step 1.
        where copy_row not in (select copy_row from judged where excluded)
        group by user_key
    ) as f
    join event_copies as e on e.rowid = (f.first_key & 18446744073709551615)::bigint
),
furthest as (
    -- The furthest reach, then the earliest entry. arg_min on a scalar key is several times
    -- faster than on a row, so the key packs both into one HUGEINT: 2^31 - reach in the high
    -- 64 bits, the entry time in microseconds shifted by 2^63 (so any time is non-negative) in
    -- the low 64.
    select
        user_key,
        arg_min(
            {'ts': ts, 'platform': platform, 'channel': channel, 't2': t2, 'reach': reach}, key
        ) as entry,
        min(key, 2) as keys
    from (
        select
            *,
            (2147483648 - reach)::hugeint * 18446744073709551616
            + (epoch_us(ts)::hugeint + 9223372036854775808) as key
        from reaches
    )
    group by user_key
),
counted as (
    select
        f.user_key,
        b.user_key is not null as reached_step_2,
        if(reached_step_2, b.entry.ts, f.entry.ts) as entry_ts,
        if(reached_step_2, b.entry.platform, f.entry.platform) as platform,
        if(reached_step_2, b.entry.channel, f.entry.channel) as channel,
        b.entry.t2,
        b.entry.reach,
        -- Simultaneous entries: funnel_attempts.sql orders them by event id.
        if(reached_step_2, len(b.keys) = 2 and b.keys[1] = b.keys[2], f.tied) as tied
    from firsts as f
    left join furthest as b on b.user_key = f.user_key
)
select
    $funnel as funnel,
    d.user_key,
    if(d.reached_step_2, list_concat([d.entry_ts], c.step_ts[:d.reach - 1]), [d.entry_ts])
        as step_ts,
    {'ts': d.entry_ts, 'platform': d.platform, 'channel': d.channel} as entry,
    d.tied
from counted as d
left join chains as c on c.user_key = d.user_key and c.t2 = d.t2;
