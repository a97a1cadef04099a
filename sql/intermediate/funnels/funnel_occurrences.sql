-- sql/intermediate/funnels/funnel_occurrences.sql: temp view funnel_occurrences, the events a
-- step can match (CONTRACT §3 Funnel semantics). Needs funnel_config and funnel_marks: raw
-- events for unmarked names (ties do not matter there, so no bookkeeping), funnel_marks rows
-- for marked names. Read by funnel_unordered.sql and, one step at a time, through the
-- step_occurrences macro (sql/macros/step_occurrences.sql) by funnel_paths.sql and
-- funnel_advance.sql.
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
