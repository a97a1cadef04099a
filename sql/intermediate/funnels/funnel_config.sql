-- sql/intermediate/funnels/funnel_config.sql: temp table funnel_config, the configured funnels as
-- data (CONTRACT §1 `funnels`, §3). Needs nothing but $funnels, a list of {funnel, steps,
-- window_seconds, order_mode} bound as one parameter: step names are data, never SQL text
-- (STYLE). This is the only way a funnel definition reaches SQL: every other funnel model reads
-- its steps, window and order mode here (given at most $funnel and $step_index). One row per
-- funnel and step, with what the matching models need to know about the step:
--   prior_same  the earlier step indexes with the same event name (one event occurrence fills at
--               most one step, so those occurrences must be skipped);
--   repeated    this step's event name appears more than once in the funnel;
--   marked      some funnel needs per-timestamp bookkeeping for this event name (it repeats in a
--               funnel, or a strict funnel matches it after step 1): see funnel_marks.sql.
create or replace temp table funnel_config as
with funnels as (
    select
        unnest(
            $funnels::struct(
                funnel varchar, steps varchar[], window_seconds bigint, order_mode varchar
            )[]
        ) as f
),
steps as (
    select
        f.funnel,
        i::integer as step_index,
        f.steps[i] as step,
        len(f.steps)::integer as n_steps,
        to_seconds(f.window_seconds) as window_interval,
        f.order_mode,
        list_filter(range(1, i), lambda j: f.steps[j] = f.steps[i]) as prior_same,
        len(list_filter(f.steps, lambda s: s = f.steps[i])) > 1 as repeated
    from funnels, unnest(range(1, len(f.steps) + 1)) as t(i)
)
select
    *,
    -- Only names that later steps match need the bookkeeping (entries never look it up).
    bool_or((repeated or order_mode = 'strict') and step_index > 1) over (partition by step)
        as marked
from steps
order by funnel, step_index;
