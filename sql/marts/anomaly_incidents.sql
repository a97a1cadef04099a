-- sql/marts/anomaly_incidents.sql: the flagged anomalies grouped into incidents, one row per
-- flagged anomalies row (assets/anomalies/incidents.py), registered as `incident_rows_frame`.
-- Rows from $score_from on are replaced, like the anomalies they group.
create or replace temp view incident_rows_new as
select
    incident_id::varchar as incident_id,
    metric_date::date as metric_date,
    metric::varchar as metric,
    dimension::varchar as dimension,
    segment::varchar as segment,
    direction::varchar as direction,
    value::double as value,
    expected::double as expected,
    score::double as score,
    is_lead::boolean as is_lead,
    incident_rows::integer as incident_rows,
    summary::varchar as summary
from incident_rows_frame;

create table if not exists anomaly_incidents as select * from incident_rows_new limit 0;

delete from anomaly_incidents where metric_date >= $score_from;

insert into anomaly_incidents
select * from incident_rows_new
order by metric_date, incident_id, not is_lead, metric, dimension, segment;

drop view incident_rows_new;
