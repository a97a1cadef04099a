-- sql/intermediate/funnels/funnel_occurrences.sql: temp view funnel_occurrences, the events a
-- step can match (CONTRACT §3 Funnel semantics). Needs funnel_config, funnel_events and
-- funnel_marks: events as they are for unmarked matchers (no other step can have used them, so
-- no bookkeeping; ids is the one occurrence), funnel_marks rows for marked ones. Read by
-- funnel_unordered.sql and, one step at a time, through the step_occurrences macro
-- (sql/macros/step_occurrences.sql) by funnel_paths.sql and funnel_advance.sql.
create or replace temp view funnel_occurrences as
select
    user_key,
    matcher,
    ts,
    [copy_row] as ids,
    1::bigint as n_at,
    null::bigint as first_pos,
    null::timestamp as next_ts,
    null::bigint as next_id,
    null::timestamp as prev_any_ts,
    null::timestamp as next_prev_any_ts
from funnel_events
where matcher in (select matcher from funnel_config where not marked)
union all
select
    user_key, matcher, ts, ids, n_at, first_pos, next_ts, next_id, prev_any_ts, next_prev_any_ts
from funnel_marks;
