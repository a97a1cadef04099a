-- sql/marts/anomalies_as_of.sql: in the as-of warehouse of a report (pipelines/as_of.py),
-- `anomalies` and `anomaly_incidents` as the report's day $day showed them. Each scored day has
-- versions: its current rows and the replaced ones kept by anomaly_history.sql, each with the
-- arrival days it knew. The version of a day is the one known on $day (scored knowing arrival
-- days up to $day, not yet replaced by then); a day that no version knew on $day (a backfill
-- scored it knowing later days) keeps its earliest version, which never changes again.
-- Current rows scored before versions were kept have no known_through: they count as known.
create or replace temp table anomaly_versions as
select a.*, d.known_through, null::date as replaced_through
from anomalies as a
left join anomaly_days as d using (metric_date)
union all by name
select * from anomaly_history;

create or replace temp table chosen_versions as
select
    metric_date,
    coalesce(
        max(known_through) filter (
            where coalesce(known_through, $day::date) <= $day::date
              and coalesce(replaced_through > $day::date, true)
        ),
        min(known_through)
    ) as known_through
from (select distinct metric_date, known_through, replaced_through from anomaly_versions)
where metric_date <= $day::date
group by metric_date;

create or replace temp table incident_versions as
select i.*, d.known_through
from anomaly_incidents as i
left join anomaly_days as d using (metric_date)
union all by name
select * exclude (replaced_through) from anomaly_incident_history;

create or replace table anomalies as
select v.* exclude (known_through, replaced_through)
from anomaly_versions as v
semi join chosen_versions as c
    on c.metric_date = v.metric_date and c.known_through is not distinct from v.known_through
order by metric_date, metric, dimension, segment;

create or replace table anomaly_incidents as
select v.* exclude (known_through)
from incident_versions as v
semi join chosen_versions as c
    on c.metric_date = v.metric_date and c.known_through is not distinct from v.known_through
order by metric_date, incident_id, not is_lead, metric, dimension, segment;

drop table anomaly_versions;
drop table chosen_versions;
drop table incident_versions;
