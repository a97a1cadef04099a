-- sql/staging/record_changes.sql: after load_partition.sql and resolve_identities.sql, in the
-- load's one transaction. Records in mart_changes each (person, event date) whose events this
-- load changed, so the marts update only those (assets/marts/changes.py). Exact, not a
-- lookback: the event ids the load re-decided (affected_ids) are compared before and after, on
-- the columns the incremental marts read (country and properties too: breakdowns by them), and the copies whose person changed are added
-- (reattributed_events). A re-sent day that changes nothing records nothing.
-- needs: macros/change_numbers.sql
insert into mart_changes
select next_change_no(), 'events', user_id, event_date
from (
    -- The affected ids' kept copies now: the day's, and those of other days that hold a copy
    -- of one (load_partition.sql's other_copies; their `kept` may have changed, their person
    -- too). Read once, so not stored.
    with events_after as (
        select event_id, user_id, event, ts, event_date, platform, channel, campaign, country,
            revenue, properties
        from event_copies
        where arrival_date = $arrival_date and kept
          and event_id in (select event_id from events_before)
        union all
        select event_id, user_id, event, ts, event_date, platform, channel, campaign, country,
            revenue, properties
        from event_copies
        where arrival_date <> $arrival_date and kept
          and arrival_date between $history_first and $history_last
          and event_id in (select event_id from other_copies)
    ),
    -- Each id's row before and after, compared whole (an id has one kept copy on each side):
    -- a join on the id instead of two set differences over every column.
    differing as (
        select b, a
        from events_before as b
        full join events_after as a on a.event_id = b.event_id
        where b is distinct from a
    )
    select b.user_id, b.event_date from differing where b.event_id is not null
    union
    select a.user_id, a.event_date from differing where a.event_id is not null
    union
    -- The day's kept copies of ids `events` did not hold: new rows, recorded without the
    -- comparison (on a new day, every copy: only three of their columns are read).
    select user_id, event_date
    from event_copies
    where arrival_date = $arrival_date and kept
      and event_id not in (select event_id from events_before)
    union
    select user_id, event_date from reattributed_events
);
