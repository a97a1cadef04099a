-- sql/intermediate/funnels/funnel_config.sql: temp table funnel_config, the configured funnels as
-- data (CONTRACT §1 `funnels`, §3). Needs nothing but $funnels, a list of {funnel, steps,
-- window_seconds, order_mode, exclusions} bound as one parameter: event names and filter values
-- are data, never SQL text (STYLE). This is the only way a funnel definition reaches SQL: every
-- other funnel model reads its steps, window and order mode here (given at most $funnel and
-- $step_index), and its exclusions in funnel_exclusions.sql. One row per funnel and step:
--   step        the step's name in funnel_steps (`event[key=value|value,key=value]`);
--   event       the event name it matches;
--   matcher     the step's (event, where) as one integer, equal for equal definitions in any
--               funnel (numbered in assets/marts/funnels.py); funnel_events.sql lists the
--               events of each matcher, and the models match steps on it;
--   filters     the `where` as [{key, path, vals}] (path: the JSON pointer of a `properties`
--               key, NULL for a lifted column); [] for a bare event name;
--   prior_same  the earlier step indexes with the same matcher (unordered funnels: a step
--               listed m times needs m occurrences);
--   shares_event  another step of the funnel has the same event name, so one occurrence could
--               fill both: the matching models track which occurrences the attempt used;
--   marked      some funnel needs per-timestamp bookkeeping for this matcher (it shares its
--               event in a funnel, or a strict funnel matches it after step 1): funnel_marks.sql.
create or replace temp table funnel_config as
with funnels as (
    select
        unnest(
            $funnels::struct(
                funnel varchar,
                steps struct(
                    event varchar,
                    name varchar,
                    matcher integer,
                    filters struct(key varchar, path varchar, vals varchar[])[]
                )[],
                window_seconds bigint,
                order_mode varchar
            )[]
        ) as f
),
steps as (
    select
        f.funnel,
        i::integer as step_index,
        f.steps[i].name as step,
        f.steps[i].event as event,
        f.steps[i].matcher as matcher,
        f.steps[i].filters as filters,
        len(f.steps)::integer as n_steps,
        to_seconds(f.window_seconds) as window_interval,
        f.order_mode,
        list_filter(range(1, i), lambda j: f.steps[j].matcher = f.steps[i].matcher)
            as prior_same,
        len(list_filter(f.steps, lambda s: s.event = f.steps[i].event)) > 1 as shares_event
    from funnels, unnest(range(1, len(f.steps) + 1)) as t(i)
)
select
    *,
    -- Only matchers that later steps match need the bookkeeping (entries never look it up).
    bool_or((shares_event or order_mode = 'strict') and step_index > 1) over (partition by matcher)
        as marked
from steps
order by funnel, step_index;
