-- sql/intermediate/funnels/funnel_entries.sql: temp view funnel_entries, every event that starts
-- an attempt (CONTRACT §3 Funnel semantics): step 1 of every funnel, any step of an unordered
-- one. Needs funnel_config and funnel_events; read by funnel_unordered.sql.
create or replace temp view funnel_entries as
select c.funnel, e.user_key, e.ts, e.event_id, e.platform, e.channel
from funnel_events as e
join (
    select distinct funnel, matcher
    from funnel_config
    where step_index = 1 or order_mode = 'unordered'
) as c
    on c.matcher = e.matcher;
