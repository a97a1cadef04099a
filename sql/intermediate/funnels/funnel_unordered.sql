-- sql/intermediate/funnels/funnel_unordered.sql: the counted attempt of every user in every
-- unordered funnel (CONTRACT §3 Funnel semantics, order mode `unordered`). Needs funnel_config,
-- funnel_marks, funnel_entries, funnel_occurrences and funnel_match_tables (which empties
-- funnel_unordered); run only when some funnel is unordered; funnel_attempts.sql adds these
-- rows to the ordered and strict ones.
--
-- Definition (PostHog-style "completed k steps, in any order"): an attempt starts at any event of
-- any of the funnel's steps (t0). Each step is filled by a distinct occurrence of its event in
-- [t0, t0 + window] (inclusive); a step listed m times needs m occurrences, the earliest ones
-- are used, and the entry event itself fills a step it matches. Steps are matchers (an event
-- with its `where`, funnel_events.sql); settings allow two steps of one event in an unordered
-- funnel only with the same `where` or exclusive ones, so every event fills at most one kind
-- of step and filling each kind with its earliest occurrences is the best any attempt can do.
-- The attempt reaches the number of filled steps (so step k of the funnel means "k of its steps
-- done"); its step times are the filled times, sorted. As in ordered funnels, a user's counted
-- attempt is the earliest one (by entry time, then event id) among those that fill the most
-- steps.
insert into funnel_unordered
with slots as not materialized (
    -- Every attempt (one per user and distinct entry time: simultaneous entries are alike)
    -- looks for every step from its own entry time. This step is the (same_before + 1)-th of the
    -- funnel with its matcher, so it takes that occurrence at or after the entry time.
    select
        e.funnel,
        e.user_key,
        e.entry_ts,
        c.matcher,
        c.window_interval,
        len(c.prior_same) as same_before
    from (select distinct funnel, user_key, ts as entry_ts from funnel_entries) as e
    join funnel_config as c on c.funnel = e.funnel and c.order_mode = 'unordered'
),
found as (
    -- The first occurrence of each matcher.
    select s.funnel, s.user_key, s.entry_ts, s.window_interval, o.ts as found_ts
    from (select * from slots where same_before = 0) as s
    asof left join (
        select user_key, matcher, ts
        from funnel_occurrences
        where matcher in (select matcher from funnel_config where order_mode = 'unordered')
    ) as o
        on o.user_key = s.user_key and o.matcher = s.matcher and o.ts >= s.entry_ts
    union all
    -- Later occurrences of a matcher listed several times: by position (funnel_marks).
    select
        l.funnel,
        l.user_key,
        l.entry_ts,
        l.window_interval,
        if(l.first_pos + l.same_before < m.first_pos + m.n_at, m.ts, null)
    from (
        select s.*, o.first_pos
        from (select * from slots where same_before > 0) as s
        asof left join funnel_marks as o
            on o.user_key = s.user_key and o.matcher = s.matcher and o.ts >= s.entry_ts
    ) as l
    asof left join funnel_marks as m
        on m.user_key = l.user_key
        and m.matcher = l.matcher
        and m.first_pos <= l.first_pos + l.same_before
),
attempts as (
    select
        funnel,
        user_key,
        entry_ts,
        list_sort(list(found_ts) filter (where found_ts <= entry_ts + window_interval)) as step_ts
    from found
    group by funnel, user_key, entry_ts
),
best as (
    -- The attempt filling the most steps; among those the earliest.
    select
        funnel,
        user_key,
        arg_min({'entry_ts': entry_ts, 'step_ts': step_ts}, (-len(step_ts), entry_ts)) as best
    from attempts
    group by funnel, user_key
),
entry_events as (
    -- The entry event at that time: the smallest event id among simultaneous ones.
    select
        b.funnel,
        b.user_key,
        min({'event_id': e.event_id, 'platform': e.platform, 'channel': e.channel}) as entry
    from funnel_entries as e
    join best as b
        on b.funnel = e.funnel and b.user_key = e.user_key and b.best.entry_ts = e.ts
    group by b.funnel, b.user_key
)
select
    b.funnel,
    b.user_key,
    {'ts': b.best.entry_ts, 'platform': e.entry.platform, 'channel': e.entry.channel} as entry,
    b.best.step_ts as step_ts
from best as b
join entry_events as e using (funnel, user_key);
