-- sql/intermediate/funnels/funnel_events.sql: the events the funnel models look at (CONTRACT §3 Funnel
-- semantics). Needs funnel_config. Builds one small table and two views:
--
-- funnel_marks: for "marked" event names only (repeated inside a funnel, or matched after step 1
--   by a strict funnel), one row per user, event name and distinct timestamp:
--     n_at             occurrences of that event at exactly that time;
--     first_pos        position of the first of them among the user's occurrences of the event
--                      in time order (1-based), so the next one is first_pos + n_at;
--     next_ts          the next distinct time of that event;
--     prev_any_ts      the latest time of ANY event of the user strictly before ts (strict mode:
--                      an event strictly between two matched steps breaks the attempt);
--     next_prev_any_ts prev_any_ts of the next_ts row.
--   Events at the same time are interchangeable for matching, so counting them is enough; the
--   event id only decides which entry event gives the segment (funnel_attempts.sql,
--   funnel_unordered.sql).
-- funnel_entries: every event that starts an attempt (step 1; any step for unordered funnels).
-- funnel_occurrences: the events a step can match: raw events for unmarked names (ties do not
--   matter there), funnel_marks rows for marked names.
-- Users are matched on user_key (keyed_events, sql/staging/tables.sql): grouping and joining
-- millions of rows on a dense integer is faster than on the id string.
-- funnel_attempts.sql turns the keys back into user ids.
-- It also starts the tables the matching models fill empty: funnel_chained (funnel_chain.sql),
-- funnel_unordered (funnel_unordered.sql), funnel_paths (funnel_paths.sql, funnel_advance.sql).
create or replace temp table funnel_marks as
with marked_names as (
    select distinct step as event from funnel_config where marked
),
strict_wanted as (
    select count(*) > 0 as wanted from funnel_config where order_mode = 'strict'
),
occurrences as (
    select user_key, event, ts, count(*)::bigint as n_at
    from keyed_events
    where event in (select event from marked_names)
    group by user_key, event, ts
),
positioned as (
    select
        *,
        sum(n_at) over by_event - n_at + 1 as first_pos,
        lead(ts) over by_event as next_ts
    from occurrences
    window by_event as (partition by user_key, event order by ts)
),
gaps as (
    select p.*, a.ts as prev_any_ts
    from positioned as p
    asof left join (
        -- All events of the user, but only when a strict funnel needs the gaps.
        select user_key, ts from keyed_events where (select wanted from strict_wanted)
    ) as a
        on a.user_key = p.user_key and a.ts < p.ts
)
select
    user_key,
    event,
    ts,
    n_at,
    first_pos::bigint as first_pos,
    next_ts,
    prev_any_ts,
    lead(prev_any_ts) over (partition by user_key, event order by ts) as next_prev_any_ts
from gaps;

create or replace temp view funnel_entries as
select c.funnel, e.user_key, e.ts, e.event_id, e.platform, e.channel
from keyed_events as e
join (
    select distinct funnel, step
    from funnel_config
    where step_index = 1 or order_mode = 'unordered'
) as c
    on c.step = e.event;

create or replace temp view funnel_occurrences as
select
    user_key,
    event,
    ts,
    1::bigint as n_at,
    null::bigint as first_pos,
    null::timestamp as next_ts,
    null::timestamp as prev_any_ts,
    null::timestamp as next_prev_any_ts
from keyed_events
where event in (select step from funnel_config where not marked)
union all
select user_key, event, ts, n_at, first_pos, next_ts, prev_any_ts, next_prev_any_ts
from funnel_marks;

-- The tables the matching models fill (funnel_attempts.sql reads them all).
create or replace temp table funnel_chained (
    funnel varchar,
    user_key integer,
    step_ts timestamp[],
    entry struct(ts timestamp, platform varchar, channel varchar),
    tied boolean
);

create or replace temp table funnel_unordered (
    funnel varchar,
    user_key integer,
    entry struct(ts timestamp, platform varchar, channel varchar),
    step_ts timestamp[]
);

-- One step's occurrences, as funnel_paths.sql and funnel_advance.sql match them.
create or replace temp macro step_occurrences(step_event) as table
select user_key, ts, n_at, next_ts, prev_any_ts, next_prev_any_ts
from funnel_occurrences
where event = step_event;

create or replace temp table funnel_paths (
    funnel varchar,
    user_key integer,
    anchor_ts timestamp,
    step_ts timestamp[],
    entries struct(ts timestamp, platform varchar, channel varchar)[],
    first_tied boolean
);
