-- sql/as_of/anomaly_versions.sql: once per replay (pipelines/as_of.py), every version of every
-- scored day's rows of `anomalies` and `anomaly_incidents` (the current ones, with the arrival
-- days anomaly_days says they knew, and the replaced ones of the history tables), as
-- sql/marts/anomalies_as_of.sql reads them; then `anomalies` and `anomaly_incidents` emptied:
-- sql/as_of/anomalies_day.sql fills them day by day with the version each day showed.
create or replace table replay_anomaly_versions as
select a.*, d.known_through, null::date as replaced_through
from anomalies as a
left join anomaly_days as d using (metric_date)
union all by name
select * from anomaly_history;

create or replace table replay_incident_versions as
select i.*, d.known_through, null::date as replaced_through
from anomaly_incidents as i
left join anomaly_days as d using (metric_date)
union all by name
select * from anomaly_incident_history;

delete from anomalies;
delete from anomaly_incidents;
