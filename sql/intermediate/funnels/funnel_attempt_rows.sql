-- sql/intermediate/funnels/funnel_attempt_rows.sql: temp table funnel_attempt_rows, the counted
-- attempts of funnel_attempts.sql with the fields of their entry event that the dimensions read
-- (CONTRACT §3 Breakdowns: a user's segment is the value of their counted attempt's entry
-- event). Needs funnel_config, funnel_events and funnel_attempts; what funnel_user_attempts
-- keeps. platform and channel are on funnel_attempts ('unknown' when missing); campaign,
-- country and properties are read from the entry event itself only when $entry_event_fields (a
-- dimension needs them), else NULL. The entry event is the step-1 event (its matcher's, so
-- step 1's `where` holds) of the user at entry_ts with the smallest event id, as
-- funnel_attempts.sql orders simultaneous entries.
create or replace temp table funnel_attempt_rows as
select
    a.*,
    null::varchar as campaign,
    null::varchar as country,
    null::json as properties
from funnel_attempts as a
where not $entry_event_fields
union all
select
    a.*,
    f.fields.campaign,
    f.fields.country,
    f.fields.properties
from funnel_attempts as a
join (
    select
        a.funnel,
        a.user_id,
        arg_min(
            {'campaign': e.campaign, 'country': e.country, 'properties': e.properties},
            m.event_id
        ) as fields
    from funnel_attempts as a
    join user_keys as k using (user_id)
    join funnel_config as c on c.funnel = a.funnel and c.step_index = 1
    join funnel_events as m
        on m.matcher = c.matcher and m.user_key = k.user_key and m.ts = a.entry_ts
    join event_copies as e on e.rowid = m.copy_row
    where $entry_event_fields
    group by a.funnel, a.user_id
) as f using (funnel, user_id)
where $entry_event_fields;
