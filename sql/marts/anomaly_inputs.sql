-- sql/marts/anomaly_inputs.sql: the daily_metrics rows as the anomalies were scored from them
-- (assets/anomalies/incremental.py). The next run compares daily_metrics with this copy and
-- scores only from the first day that differs; rows from $score_from on are replaced.
create table if not exists anomaly_inputs as
select metric_date, dimension, segment, active_users, new_users, sessions, events, purchasers,
    revenue, conversion_rate
from daily_metrics
limit 0;

delete from anomaly_inputs where metric_date >= $score_from;

insert into anomaly_inputs
select metric_date, dimension, segment, active_users, new_users, sessions, events, purchasers,
    revenue, conversion_rate
from daily_metrics
where metric_date >= $score_from
order by metric_date, dimension, segment;
