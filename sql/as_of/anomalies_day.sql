-- sql/as_of/anomalies_day.sql: move `anomalies` and `anomaly_incidents` of the as-of warehouse
-- (pipelines/as_of.py) from the end of $previous to the end of $day: the rows each scored day
-- showed on $day, as sql/marts/anomalies_as_of.sql picks them (its rule, restated here), for
-- the days whose pick can have changed. Needs the versions of sql/as_of/anomaly_versions.sql.
-- A day's version is the one known on $day (scored knowing arrival days up to $day, not yet
-- replaced by then); a day that no version knew on $day keeps its earliest version. Which
-- versions qualify changes only when $day passes one of their known_through or
-- replaced_through days, so only the days with such a version, and the days newly reached
-- (after $previous), are picked again: the others keep the rows they have.
create or replace temp table anomaly_days_redone as
select distinct metric_date
from replay_anomaly_versions
where metric_date <= $day::date
    and (
        metric_date > $previous::date
        or (known_through > $previous::date and known_through <= $day::date)
        or (replaced_through > $previous::date and replaced_through <= $day::date)
    );

create or replace temp table anomaly_days_chosen as
select
    metric_date,
    coalesce(
        max(known_through) filter (
            where coalesce(known_through, $day::date) <= $day::date
              and coalesce(replaced_through > $day::date, true)
        ),
        min(known_through)
    ) as known_through
from (
    select distinct metric_date, known_through, replaced_through
    from replay_anomaly_versions
    where metric_date in (select metric_date from anomaly_days_redone)
)
group by metric_date;

delete from anomalies where metric_date in (select metric_date from anomaly_days_redone);

insert into anomalies
select v.* exclude (known_through, replaced_through)
from replay_anomaly_versions as v
semi join anomaly_days_chosen as c
    on c.metric_date = v.metric_date and c.known_through is not distinct from v.known_through
order by metric_date, metric, dimension, segment;

delete from anomaly_incidents where metric_date in (select metric_date from anomaly_days_redone);

insert into anomaly_incidents
select v.* exclude (known_through, replaced_through)
from replay_incident_versions as v
semi join anomaly_days_chosen as c
    on c.metric_date = v.metric_date and c.known_through is not distinct from v.known_through
order by metric_date, incident_id, not is_lead, metric, dimension, segment;

drop table anomaly_days_redone;
drop table anomaly_days_chosen;
