-- sql/marts/anomaly_evaluation.sql: how well the anomalies match labelled incidents (overall,
-- then one row per metric). Built from the frame evaluate_anomalies returns
-- (assets/anomalies/evaluation.py), registered as `scored`; empty when there are no labels.
-- The explicit casts pin the table's types even when the frame is empty (an empty object column
-- would otherwise become INTEGER).
create or replace table anomaly_evaluation as
select
    metric::varchar as metric,
    labelled::integer as labelled,
    flagged::integer as flagged,
    true_positives::integer as true_positives,
    false_positives::integer as false_positives,
    false_negatives::integer as false_negatives,
    precision::double as precision,
    recall::double as recall,
    f1::double as f1,
    roc_auc::double as roc_auc
from scored
