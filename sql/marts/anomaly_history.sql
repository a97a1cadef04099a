-- sql/marts/anomaly_history.sql: before a scoring run replaces the rows of anomalies and
-- anomaly_incidents from $score_from on, keep them, so that a report written again later shows
-- the rows its day showed (pipelines/as_of.py, sql/marts/anomalies_as_of.sql). Internal tables:
-- anomaly_days says which arrival days each day's current rows knew (the last arrival day in
-- the warehouse when they were scored); the history tables hold the replaced rows with the
-- arrival days they knew and those of the run that replaced them. A run that knew the same
-- arrival days replaces rows for good (nothing arrived in between, no report saw them apart).
-- Not run on a full scoring (other settings or scorer version): the history starts afresh.
-- needs: marts/anomaly_history_tables.sql
insert into anomaly_history
select a.*, d.known_through, $known_through::date
from anomalies as a
join anomaly_days as d using (metric_date)
where a.metric_date >= $score_from and d.known_through is distinct from $known_through::date;

insert into anomaly_incident_history
select i.*, d.known_through, $known_through::date
from anomaly_incidents as i
join anomaly_days as d using (metric_date)
where i.metric_date >= $score_from and d.known_through is distinct from $known_through::date;
