-- sql/marts/anomalies.sql: every day, metric and segment scored for anomalies (CONTRACT §3
-- anomalies). Rows from $score_from on are replaced by the frame the scorer returns
-- (assets/anomalies/scoring.py), registered as `scored`; earlier days are kept as they were
-- scored (a day's row never changes when later days arrive). The contract columns, then the
-- extras: the no-flag band for charts, how far and how old, what drove an `all` flag, and what
-- the next run needs to continue (the forest's features, the day of a run of unusual days).
-- The explicit casts pin the table's types even when the frame is empty (an empty object column
-- would otherwise become INTEGER).
create or replace temp view scored_rows as
select
    metric_date::date as metric_date,
    metric::varchar as metric,
    dimension::varchar as dimension,
    segment::varchar as segment,
    value::double as value,
    expected::double as expected,
    score::double as score,
    is_anomaly::boolean as is_anomaly,
    direction::varchar as direction,
    explanation::varchar as explanation,
    expected_low::double as expected_low,
    expected_high::double as expected_high,
    relative_change::double as relative_change,
    z_score::double as z_score,
    history_days::integer as history_days,
    flaggable::boolean as flaggable,
    driver::varchar as driver,
    segment_shares::varchar as segment_shares,
    last_week::double as last_week,
    median_4w::double as median_4w,
    volume::double as volume,
    f_ratio::double as f_ratio,
    f_z_expected::double as f_z_expected,
    f_z_level::double as f_z_level,
    f_z_change::double as f_z_change,
    f_phase::double as f_phase,
    run_day::integer as run_day
from scored;

create table if not exists anomalies as select * from scored_rows limit 0;

delete from anomalies where metric_date >= $score_from;

insert into anomalies
select * from scored_rows
order by metric_date, metric, dimension, segment;

drop view scored_rows;
