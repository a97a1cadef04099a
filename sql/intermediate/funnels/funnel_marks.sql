-- sql/intermediate/funnels/funnel_marks.sql: temp table funnel_marks, the per-timestamp
-- bookkeeping of the "marked" matchers (CONTRACT §3 Funnel semantics). Needs funnel_config (its
-- `marked` matchers: sharing their event name with another step of a funnel, or matched after
-- step 1 by a strict funnel) and funnel_events. One row per user, marked matcher and distinct
-- timestamp:
--   ids              the occurrences at exactly that time (copy_row), by event id: the first
--                    one the attempt has not used yet is the one a step takes;
--   n_at             how many (len(ids));
--   first_pos        position of the first of them among the user's occurrences of the
--                    matcher in time order (1-based), so the next one is first_pos + n_at;
--   next_ts, next_id the next distinct time of that matcher and its first occurrence;
--   prev_any_ts      the latest time of ANY event of the user strictly before ts (strict mode:
--                    an event strictly between two matched steps breaks the attempt);
--   next_prev_any_ts prev_any_ts of the next_ts row.
-- Only occurrences at the time of the previous matched step can have been used by the attempt
-- (every earlier step matched at or before it), so the ids of one timestamp are all the
-- bookkeeping needed. Read by funnel_occurrences.sql and funnel_unordered.sql.
-- Users are matched on user_key (funnel_copies, like keyed_events in sql/staging/tables.sql):
-- grouping and joining millions of rows on a dense integer is faster than on the id string.
-- funnel_attempts.sql turns the keys back into user ids.
create or replace temp table funnel_marks as
with strict_wanted as (
    select count(*) > 0 as wanted from funnel_config where order_mode = 'strict'
),
occurrences as (
    select
        user_key,
        matcher,
        ts,
        list(copy_row order by event_id) as ids,
        count(*)::bigint as n_at
    from funnel_events
    where matcher in (select matcher from funnel_config where marked)
    group by user_key, matcher, ts
),
positioned as (
    select
        *,
        sum(n_at) over by_matcher - n_at + 1 as first_pos,
        lead(ts) over by_matcher as next_ts,
        lead(ids[1]) over by_matcher as next_id
    from occurrences
    window by_matcher as (partition by user_key, matcher order by ts)
),
gaps as (
    select p.*, a.ts as prev_any_ts
    from positioned as p
    asof left join (
        -- All events of the user, but only when a strict funnel needs the gaps.
        select user_key, ts from funnel_copies where (select wanted from strict_wanted)
    ) as a
        on a.user_key = p.user_key and a.ts < p.ts
)
select
    user_key,
    matcher,
    ts,
    ids,
    n_at,
    first_pos::bigint as first_pos,
    next_ts,
    next_id,
    prev_any_ts,
    lead(prev_any_ts) over (partition by user_key, matcher order by ts) as next_prev_any_ts
from gaps;
