-- sql/intermediate/funnels/funnel_match_tables.sql: the empty temp tables the matching models
-- fill, one row per matched attempt (CONTRACT §3 Funnel semantics); funnel_attempts.sql reads
-- them all, so they exist even when no funnel needs a model. Needs nothing; run before the
-- matching models on every build.
--   funnel_chained    filled by funnel_chain.sql (ordered funnels whose steps all differ);
--   funnel_unordered  filled by funnel_unordered.sql (unordered funnels);
--   funnel_paths      filled by funnel_paths.sql and funnel_advance.sql (other ordered and
--                     strict funnels).
create or replace temp table funnel_chained (
    funnel varchar,
    user_key integer,
    step_ts timestamp[],
    entry struct(ts timestamp, platform varchar, channel varchar),
    tied boolean
);

create or replace temp table funnel_unordered (
    funnel varchar,
    user_key integer,
    entry struct(ts timestamp, platform varchar, channel varchar),
    step_ts timestamp[]
);

create or replace temp table funnel_paths (
    funnel varchar,
    user_key integer,
    -- One attempt's rows, one per step it reached, share a path_id (excluded together).
    path_id bigint,
    anchor_ts timestamp,
    step_ts timestamp[],
    -- The occurrences (copy_row) the attempt used at its last matched time.
    used bigint[],
    entries struct(ts timestamp, event_id varchar, platform varchar, channel varchar)[]
);
