-- sql/marts/anomaly_history_tables.sql: the internal tables that keep the anomaly rows a scoring
-- run replaced (sql/marts/anomaly_history.sql says how), created once beside anomalies and
-- anomaly_incidents.
create table if not exists anomaly_days (metric_date date not null, known_through date);

create table if not exists anomaly_history as
select *, null::date as known_through, null::date as replaced_through from anomalies limit 0;

create table if not exists anomaly_incident_history as
select *, null::date as known_through, null::date as replaced_through
from anomaly_incidents limit 0;
