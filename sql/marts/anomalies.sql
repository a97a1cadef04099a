-- sql/marts/anomalies.sql: every day, metric and segment scored for anomalies (CONTRACT §3
-- anomalies). Built from the frame the scorer returns (assets/anomalies/scoring.py), registered
-- as `scored`: the contract columns, then the extras (the no-flag band for charts, how far and
-- how old, and what drove an `all` flag).
-- The explicit casts pin the table's types even when the frame is empty (an empty object column
-- would otherwise become INTEGER).
create or replace table anomalies as
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
    driver::varchar as driver
from scored
order by metric_date, metric, dimension, segment
