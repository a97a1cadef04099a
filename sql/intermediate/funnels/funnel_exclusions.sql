-- sql/intermediate/funnels/funnel_exclusions.sql: temp table funnel_exclusions, the exclusion
-- events of each funnel (CONTRACT §1 `exclusions`, §3). Needs nothing but $funnels (as
-- funnel_config.sql: names are data). One row per funnel and exclusion: an attempt with an event
-- of `matcher` strictly between, in time, its matched from_step and to_step events is not
-- counted. Read by funnel_events.sql (their events), funnel_chain.sql and funnel_attempts.sql.
create or replace temp table funnel_exclusions as
with funnels as (
    select
        unnest(
            $funnels::struct(
                funnel varchar,
                exclusions struct(
                    event varchar, matcher integer, from_step integer, to_step integer
                )[]
            )[]
        ) as f
)
select f.funnel, x.event, x.matcher, x.from_step, x.to_step
from funnels, unnest(f.exclusions) as t(x)
order by all;
