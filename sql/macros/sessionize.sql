-- sql/macros/sessionize.sql: the sessions of the events in the relation named `scoped` (CONTRACT
-- §3 sessions), numbered per user from 1 (session_no), for sessions.sql (all events) and
-- sessions_update.sql (the changed users' events after the sessions they keep).
-- A gap strictly longer than `gap_seconds` between two consecutive events of a user starts a
-- new session. Events with equal timestamps are ordered by event_id, so the result is
-- deterministic.
--
-- Why not "running sum of session starts, then group by": that sorts all events twice and
-- aggregates them again. Here all events are sorted once; only the first and last event of each
-- session are kept, and each first event is paired with the last event that follows it.
create or replace temp macro sessionize(scoped, gap_seconds) as table
with marked as (
    select
        user_id,
        ts,
        platform,
        channel,
        campaign,
        row_number() over by_user as event_no,
        -- A user's first event, or one after a long gap, starts a session; a user's last
        -- event, or one before a long gap, ends one. Gaps in integer microseconds: much
        -- cheaper over every event than interval arithmetic.
        coalesce(
            epoch_us(ts) - lag(epoch_us(ts)) over by_user > gap_seconds * 1000000, true
        ) as is_start,
        coalesce(
            lead(epoch_us(ts)) over by_user - epoch_us(ts) > gap_seconds * 1000000, true
        ) as is_end
    from query_table(scoped)
    window by_user as (partition by user_id order by ts, event_id)
),
boundaries as (
    -- In event order the boundaries alternate start, end (one event can be both), so the row
    -- after a start that is not also an end is that session's end.
    select
        *,
        sum(is_start::integer) over by_user as session_no,
        lead(ts) over by_user as next_ts,
        lead(event_no) over by_user as next_event_no
    from marked
    where is_start or is_end
    window by_user as (partition by user_id order by event_no rows unbounded preceding)
)
select
    user_id,
    session_no,
    ts as started_at,
    case when is_end then ts else next_ts end as ended_at,
    epoch(ended_at - started_at) as duration_seconds,
    case when is_end then 1 else next_event_no - event_no + 1 end as events,
    -- Of the session's first event (NULL stays NULL); campaign is an extra column that lets
    -- `users` take the acquisition fields from each user's first session.
    platform,
    channel,
    campaign
from boundaries
where is_start;
