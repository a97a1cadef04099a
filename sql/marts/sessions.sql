-- sql/marts/sessions.sql: one row per session (CONTRACT §3 sessions), rebuilt from every event;
-- the reference that sessions_update.sql must equal. session_id = user_id || '-' || n (n = 1,
-- 2, ... in time order): readable and unique, because the part after the last '-' is always
-- the number.
-- needs: macros/sessionize.sql
create or replace table sessions as
select
    user_id || '-' || session_no as session_id,
    user_id,
    started_at,
    ended_at,
    duration_seconds,
    events,
    platform,
    channel,
    campaign
from sessionize('events', $session_gap_seconds);
