-- sql/marts/sessions_update.sql: bring `sessions` up to date with the changes recorded since
-- $applied (mart_changes from loads), instead of rebuilding it (sessions.sql, the reference).
-- Only the changed users' sessions from their first changed day on are rebuilt; the dates whose
-- sessions changed are recorded under $change_no for the marts built from sessions.
-- needs: macros/sessionize.sql
-- needs: macros/local_time.sql

create or replace temp table session_scope as
select user_id, min(event_date) as first_changed
from mart_changes
where change_no > $applied and source = 'events'
group by user_id;

-- A user's sessions that ended more than the gap before their first changed day stay as they
-- are: every changed event is later by more than the gap, so it neither joins nor splits them
-- (one day earlier still, as event_date may be a local day, which starts within a day of its
-- UTC date). The kept sessions' count continues the numbering.
create or replace temp table session_keep as
select
    s.user_id,
    max(x.ended_at) as kept_until,
    count(x.session_id) as kept_sessions
from session_scope as s
left join sessions as x
    on x.user_id = s.user_id
    and x.ended_at < s.first_changed - interval 1 day - to_seconds($session_gap_seconds)
group by s.user_id;

-- The first event after kept_until starts a session: it was more than the gap after it before
-- the change (kept_until ended a session), or it is a changed event, later still.
create or replace temp view session_rebuild_events as
select e.user_id, e.ts, e.event_id, e.platform, e.channel, e.campaign
from events as e
join session_keep as k using (user_id)
where k.kept_until is null or e.ts > k.kept_until;

create or replace temp table sessions_new as
select
    s.user_id || '-' || (s.session_no + k.kept_sessions) as session_id,
    s.user_id,
    s.started_at,
    s.ended_at,
    s.duration_seconds,
    s.events,
    s.platform,
    s.channel,
    s.campaign
from sessionize('session_rebuild_events', $session_gap_seconds) as s
join session_keep as k using (user_id);

create or replace temp table sessions_old as
select x.session_id, x.user_id, x.started_at, x.ended_at, x.duration_seconds, x.events,
    x.platform, x.channel, x.campaign
from sessions as x
join session_keep as k using (user_id)
where k.kept_until is null or x.started_at > k.kept_until;

-- The days whose sessions changed (a session started, ended or moved), for daily_metrics.
insert into mart_changes
select distinct $change_no, 'sessions', user_id, local_date(started_at, $timezone)
from (
    (select * from sessions_old except select * from sessions_new)
    union all
    (select * from sessions_new except select * from sessions_old)
);

delete from sessions as x
using session_keep as k
where x.user_id = k.user_id and (k.kept_until is null or x.started_at > k.kept_until);

insert into sessions by name select * from sessions_new;
