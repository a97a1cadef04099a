-- sql/intermediate/funnels/funnel_user_attempts.sql: the internal table funnel_user_attempts,
-- every user's counted attempt in every funnel with its entry event's fields (the rows of
-- funnel_attempt_rows.sql), built from every event. funnel_steps.sql and funnel_daily.sql
-- aggregate it; funnel_user_attempts_update.sql keeps it current by recomputing only the
-- attempts of the persons whose events changed.
create or replace table funnel_user_attempts as
select * from funnel_attempt_rows;
