-- sql/macros/user_rows.sql: one row per user of the relations named `scoped_events` and
-- `scoped_sessions` (each holding all events / sessions of its users), CONTRACT §3 users, for
-- users.sql (every user) and users_update.sql (the changed users). `purchases` counts the
-- user's `conversion_event` events; `revenue` sums the revenue of all their events (0 when
-- none has revenue).
create or replace temp macro user_rows(scoped_events, scoped_sessions, conversion_event) as table
with per_user as (
    select
        user_id,
        min(ts) as first_seen_at,
        -- The project-zone day of the first event: days only grow with time.
        min(event_date) as first_seen_date,
        max(ts) as last_seen_at,
        count(*) as events,
        count(*) filter (where event = conversion_event) as purchases,
        -- DECIMAL: a parallel sum of doubles is not deterministic in its last bits.
        coalesce(sum(revenue::decimal(38, 9)), 0)::double as revenue
    from query_table(scoped_events)
    group by user_id
),
per_user_sessions as (
    -- Acquisition fields are the platform/channel/campaign of the user's first event, which is
    -- the first event of their first session: `sessions` has already ordered each user's events
    -- by (ts, event_id), so equal timestamps are resolved the same way there. A user's sessions
    -- start at distinct times, so the first one is unique. (Taking them from events here would
    -- re-sort every event by (ts, event_id) a second time.)
    select
        user_id,
        count(*) as sessions,
        -- In a struct because arg_min skips NULL values: a NULL platform on the first event
        -- must stay NULL rather than borrow a later session's platform.
        arg_min({'platform': platform, 'channel': channel, 'campaign': campaign}, started_at)
            as first_event
    from query_table(scoped_sessions)
    group by user_id
)
select
    p.user_id,
    p.first_seen_at,
    p.first_seen_date,
    s.first_event.platform as acquisition_platform,
    s.first_event.channel as acquisition_channel,
    s.first_event.campaign as acquisition_campaign,
    p.last_seen_at,
    p.events,
    s.sessions,
    p.purchases,
    p.revenue
from per_user as p
join per_user_sessions as s using (user_id);
