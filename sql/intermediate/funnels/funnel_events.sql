-- sql/intermediate/funnels/funnel_events.sql: temp view funnel_events, the events each matcher
-- (a step's event with its `where`, or an exclusion event) matches (CONTRACT §3 Funnel
-- semantics). Needs funnel_config, funnel_exclusions and funnel_copies (every user's events, or
-- the changed users' ones). One row per matcher and event of the
-- user it matches; an event matching several matchers (page_view and page_view[path=/pricing])
-- is a row for each, with the same copy_row (its rowid in event_copies: the occurrence's
-- identity, so that one occurrence fills at most one step).
-- A `where` matches when every key matches; a key matches when the event's value, as text, is
-- one of the listed values. Lifted columns (platform, channel, campaign, country) are read from
-- their column, any other key from `properties` (json_extract_string by JSON pointer: a number
-- 3 and a string "3" are both '3'). The values are bound data in funnel_config, never SQL text.
-- Filtered matchers are evaluated once, into funnel_filtered_events: reading JSON is the cost
-- of a filter, and the models read a step's events more than once. Bare event names stay a
-- view over funnel_copies (the models scan it more cheaply than they would read a copy).
-- needs: macros/filter_value.sql
create or replace temp table funnel_filtered_events as
with conditions as (
    -- One row per filtered matcher and key: no lambda per event (about twice as fast).
    select matcher, event, len(filters) as n_keys, unnest(filters) as f
    from (select distinct matcher, event, filters from funnel_config where len(filters) > 0)
),
checked as not materialized (
    -- The events of the matcher's name whose value of that key is one of the listed values.
    select
        c.matcher,
        c.n_keys,
        e.user_key,
        e.event_id,
        e.ts,
        e.platform,
        e.channel,
        e.copy_row
    from funnel_copies as e
    join conditions as c on c.event = e.event
    where
        list_contains(
            c.f.vals, filter_value(c.f, e.platform, e.channel, e.campaign, e.country, e.properties)
        )
)
select * exclude (n_keys) from checked where n_keys = 1
union all
-- Several keys: the events that every key matched.
select
    matcher,
    any_value(user_key),
    any_value(event_id),
    any_value(ts),
    any_value(platform),
    any_value(channel),
    copy_row
from checked
where n_keys > 1
group by matcher, copy_row
having count(*) = any_value(n_keys);

create or replace temp view funnel_events as
with matchers as (
    select distinct matcher, event from funnel_config where len(filters) = 0
    union
    select distinct matcher, event from funnel_exclusions
)
select m.matcher, e.user_key, e.event_id, e.ts, e.platform, e.channel, e.copy_row
from funnel_copies as e
join matchers as m on m.event = e.event
union all
select * from funnel_filtered_events;
