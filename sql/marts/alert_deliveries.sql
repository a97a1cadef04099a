-- sql/marts/alert_deliveries.sql: the alert deliveries of each incident (assets/anomalies/alerts.py),
-- from this run's attempts registered as `attempts` (incident_id, metric_date, delivered, error,
-- at: when it was tried, UTC).
-- A delivered incident is never posted again; a failed one is tried again on the next run.
-- The webhook URL is never stored.
create table if not exists alert_deliveries (
    incident_id varchar primary key,
    metric_date date,
    attempts integer,
    delivered_at timestamp,
    last_attempt_at timestamp,
    last_error varchar
);

insert into alert_deliveries
select incident_id, metric_date::date, 1,
    case when delivered then "at" end,
    "at",
    error
from attempts
on conflict (incident_id) do update set
    attempts = alert_deliveries.attempts + 1,
    delivered_at = coalesce(alert_deliveries.delivered_at, excluded.delivered_at),
    last_attempt_at = excluded.last_attempt_at,
    last_error = excluded.last_error;
