-- sql/marts/anomaly_days.sql: after a scoring run, the arrival days its rows knew (see
-- anomaly_history.sql), for every day it scored.
-- needs: marts/anomaly_history_tables.sql

delete from anomaly_days where metric_date >= $score_from;

insert into anomaly_days
select distinct metric_date, $known_through::date from anomalies where metric_date >= $score_from;
