-- sql/staging/record_changes.sql: after load_partition.sql and resolve_identities.sql, in the
-- load's one transaction. Records in mart_changes each (person, event date) whose events this
-- load changed, so the marts update only those (assets/marts/changes.py). Exact, not a
-- lookback: the event ids the load re-decided (affected_ids) are compared before and after, on
-- the columns the incremental marts read (country and properties too: breakdowns by them), and the copies whose person changed are added
-- (reattributed_events). A re-sent day that changes nothing records nothing.
create or replace temp table events_after as
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
    properties
from event_copies
where kept and event_id in (select event_id from affected_ids);

-- Numbers only grow, also after mart_changes has been emptied of what every mart applied.
insert into mart_changes
select
    greatest(
        coalesce((select max(change_no) from mart_changes), 0),
        coalesce((select max(applied_change_no) from mart_state), 0)
    ) + 1,
    'events',
    user_id,
    event_date
from (
    select user_id, event_date from (
        (select * from events_before except select * from events_after)
        union all
        (select * from events_after except select * from events_before)
    )
    union
    select user_id, event_date from reattributed_events
);
