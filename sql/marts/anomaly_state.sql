-- sql/marts/anomaly_state.sql: the scorer version and anomaly settings the stored anomalies were
-- scored with (assets/anomalies/incremental.py); a different one scores every day again.
create or replace table anomaly_state as
select $settings::varchar as settings, now()::timestamp as scored_at;
