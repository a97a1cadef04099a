-- The occurrences step `at_step` of funnel `of_funnel` can match (CONTRACT §3 Funnel semantics),
-- as funnel_paths.sql and funnel_advance.sql look them up: its matcher comes from
-- funnel_config, its rows from funnel_occurrences (sql/intermediate/funnels/), which must exist
-- when the macro is called.
create or replace temp macro step_occurrences(of_funnel, at_step) as table
select user_key, ts, ids, next_ts, next_id, prev_any_ts, next_prev_any_ts
from funnel_occurrences
where matcher = (
    select matcher from funnel_config where funnel = of_funnel and step_index = at_step
);
