-- sql/intermediate/funnels/funnel_marks.sql: temp table funnel_marks, the per-timestamp
-- bookkeeping of the "marked" event names (CONTRACT §3 Funnel semantics). Needs funnel_config
-- (its `marked` names: repeated inside a funnel, or matched after step 1 by a strict funnel).
-- One row per user, marked event name and distinct timestamp:
--   n_at             occurrences of that event at exactly that time;
--   first_pos        position of the first of them among the user's occurrences of the event
--                    in time order (1-based), so the next one is first_pos + n_at;
--   next_ts          the next distinct time of that event;
--   prev_any_ts      the latest time of ANY event of the user strictly before ts (strict mode:
--                    an event strictly between two matched steps breaks the attempt);
--   next_prev_any_ts prev_any_ts of the next_ts row.
-- Events at the same time are interchangeable for matching, so counting them is enough; the
-- event id only decides which entry event gives the segment (funnel_attempts.sql,
-- funnel_unordered.sql). Read by funnel_occurrences.sql and funnel_unordered.sql.
-- Users are matched on user_key (keyed_events, sql/staging/tables.sql): grouping and joining
-- millions of rows on a dense integer is faster than on the id string.
-- funnel_attempts.sql turns the keys back into user ids.
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
