-- Breakdown segments (CONTRACT §3 Breakdowns), shared by daily_metrics, funnel_steps and cohorts.
-- The configured dimensions are data: a list of {dimension, key, path} (assets/marts/
-- dimensions.py), bound as a parameter, never SQL text. `dimensioned` reads each dimension's
-- raw value of every row into its own column value_1 .. value_8 (NULL past the configured
-- ones): grouping by plain columns is several times faster than grouping by a list of values,
-- which is why settings allow at most 8 dimensions. The big relations are then counted one
-- dimension at a time (slot_value); small ones unnest(dimension_list(...)) into one row per
-- dimension.
-- needs: macros/filter_value.sql

-- The relation named `scoped` (columns platform, channel, campaign, country, properties) with
-- each dimension's value as text: a lifted column as it is, `properties.<key>` compared as text
-- (filter_value: a number 3 and a string "3" are both '3').
create or replace temp macro dimensioned(scoped, dims) as table
select
    *,
    filter_value(dims[1], platform, channel, campaign, country, properties) as value_1,
    filter_value(dims[2], platform, channel, campaign, country, properties) as value_2,
    filter_value(dims[3], platform, channel, campaign, country, properties) as value_3,
    filter_value(dims[4], platform, channel, campaign, country, properties) as value_4,
    filter_value(dims[5], platform, channel, campaign, country, properties) as value_5,
    filter_value(dims[6], platform, channel, campaign, country, properties) as value_6,
    filter_value(dims[7], platform, channel, campaign, country, properties) as value_7,
    filter_value(dims[8], platform, channel, campaign, country, properties) as value_8
from query_table(scoped);

-- One row per day (event_date), user (user_key) and combination of the configured dimensions'
-- values of the relation named `scoped` (the kept events with their user key), with the
-- events, their revenue and whether one was a `conversion_event`: the rows of
-- dimension_user_days (sql/intermediate/). Users by their integer key, not their id: that
-- table is grouped by user again downstream, and written to disk, both cheaper with a number.
-- Grouped by the value columns of the configured dimensions only: the slots past them are
-- NULL on every row, but DuckDB does not see that they are constant and would hash and compare
-- them for every event (about 15% of the grouping with four dimensions). A branch whose
-- `len(dims)` condition is false is planned as an empty result, so only one branch runs.
create or replace temp macro dimension_user_day_rows(scoped, conversion_event, dims) as table
select
    event_date as metric_date,
    user_key,
    value_1, value_2,
    null::varchar as value_3, null::varchar as value_4,
    null::varchar as value_5, null::varchar as value_6,
    null::varchar as value_7, null::varchar as value_8,
    count(*) as events,
    -- DECIMAL: a parallel sum of doubles is not deterministic in its last bits.
    sum(revenue::decimal(38, 9)) as revenue,
    bool_or(event = conversion_event) as purchased
from dimensioned(scoped, dims)
where len(dims) <= 2
group by event_date, user_key, value_1, value_2
union all
select
    event_date,
    user_key,
    value_1, value_2, value_3, value_4,
    null::varchar, null::varchar, null::varchar, null::varchar,
    count(*),
    sum(revenue::decimal(38, 9)),
    bool_or(event = conversion_event)
from dimensioned(scoped, dims)
where len(dims) between 3 and 4
group by event_date, user_key, value_1, value_2, value_3, value_4
union all
select
    event_date,
    user_key,
    value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8,
    count(*),
    sum(revenue::decimal(38, 9)),
    bool_or(event = conversion_event)
from dimensioned(scoped, dims)
where len(dims) > 4
group by event_date, user_key, value_1, value_2, value_3, value_4, value_5, value_6, value_7,
    value_8;

-- Value number k (1..8) of a row's value_1 .. value_8: with k a constant, it folds to that
-- column, so each dimension below reads a plain column.
create or replace temp macro slot_value(
    k, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
) as case k
    when 1 then value_1
    when 2 then value_2
    when 3 then value_3
    when 4 then value_4
    when 5 then value_5
    when 6 then value_6
    when 7 then value_7
    when 8 then value_8
end;

-- The distinct (user, value) pairs of dimension number k of the relation named `user_days`
-- (columns user_key, value_1 .. value_8), missing values left out: no rows when k is past the
-- configured dimensions.
create or replace temp macro dimension_users(user_days, dims, k) as table
select distinct
    user_key,
    k as dimension_no,
    slot_value(k, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8)
        as value
from query_table(user_days)
where k <= len(dims)
    and coalesce(
        slot_value(k, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8), ''
    ) <> '';

-- The configured dimensions' values of one row, in the order of `dims`, '' for a missing one
-- (so that joins on it are plain equality): unnest it beside range(1, len(dims) + 1).
create or replace temp macro dimension_list(
    dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
) as [
    coalesce(value_1, ''), coalesce(value_2, ''), coalesce(value_3, ''), coalesce(value_4, ''),
    coalesce(value_5, ''), coalesce(value_6, ''), coalesce(value_7, ''), coalesce(value_8, '')
][:len(dims)];

-- What a raw value is matched by: a lifted column's value (platform, channel, campaign, country)
-- without its case, so "iOS" and "ios" are one segment (issue 16); a property's value as it is.
create or replace temp macro segment_key(spec, value) as
    case when spec.path is null then lower(value) else value end;

-- A raw value's segment: 'unknown' when missing or empty; when its key is one of the kept keys
-- of its dimension (dimension_values, found by the caller's join on segment_key), the kept
-- spelling (`kept_value`); else 'other'.
create or replace temp macro segment_value(value, kept_value) as
    case
        when coalesce(value, '') = '' then 'unknown'
        when kept_value is not null then kept_value
        else 'other'
    end;

-- Each row of the relation named `scoped` (the columns `dimensioned` reads) once per configured
-- dimension, beside its other columns: `dimension_no` (1-based, in the order of `dims`) and the
-- row's `segment` of that dimension ('unknown', a kept value of dimension_values, or 'other').
-- cohorts.sql (a user's first event) and funnel_steps.sql (an attempt's entry event) share it.
create or replace temp macro row_segments(scoped, dims) as table
select r.* exclude (value), segment_value(r.value, k.value) as segment
from (
    select
        * exclude (value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8),
        unnest(range(1, len(dims) + 1)) as dimension_no,
        unnest(
            dimension_list(
                dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
            )
        ) as value
    from dimensioned(scoped, dims)
) as r
left join dimension_values as k
    on k.dimension = dims[r.dimension_no].dimension
    and k.key = segment_key(dims[r.dimension_no], r.value);

-- The sessions of the relation named `scoped_sessions` with the columns of their first event
-- that `dimensioned` reads: platform, channel and campaign are in `sessions`; country and
-- properties are looked up in `scoped_events` (which holds the sessions' start days) only when
-- `from_events` (a dimension reads them), as that join reads every scoped event. The first
-- event is the earliest by (ts, event_id), as sessionize orders them.
create or replace temp macro session_fields(scoped_sessions, scoped_events, from_events) as table
select
    user_id,
    started_at,
    platform,
    channel,
    campaign,
    null::varchar as country,
    null::json as properties
from query_table(scoped_sessions)
where not from_events
union all
select
    s.user_id,
    s.started_at,
    any_value(s.platform),
    any_value(s.channel),
    any_value(s.campaign),
    arg_min({'country': e.country, 'properties': e.properties}, e.event_id).country,
    arg_min({'country': e.country, 'properties': e.properties}, e.event_id).properties
from query_table(scoped_sessions) as s
join query_table(scoped_events) as e on e.user_id = s.user_id and e.ts = s.started_at
where from_events
group by s.user_id, s.started_at;

-- The sessions of the relation named `scoped_sessions` with their first event's value of each
-- configured dimension (value_1 .. value_8, as `dimensioned` reads them): daily_metrics'
-- sessions and new users. platform, channel and campaign are in `sessions`; the other fields
-- are looked up in `scoped_events` (event_row: the event's rowid in event_copies, user_key,
-- ts, event_id, country, properties: the kept events of the sessions' start days) only when
-- `from_events`. The first event is the earliest by (ts, event_id), as sessionize orders them.
-- The lookup joins on the integer user key (from user_keys) and the start time, reading no
-- event_id: almost every session has one event at its start, so only the few with more
-- (`tied`) need their events' ids to take the first, fetched by row: one scan of the ids
-- alone, instead of a second join of every event on (user_key, ts) with its fields (about 20%
-- of this lookup's CPU at 10M events). About 30% less CPU than one join carrying every
-- event's id into a grouping of all matches by session.
create or replace temp macro session_values(scoped_sessions, scoped_events, from_events, dims)
as table
with starts as materialized (
    -- (Both sides filtered: without `from_events`, neither is read.)
    select s.user_id, k.user_key, s.started_at, s.platform, s.channel, s.campaign
    from (select * from query_table(scoped_sessions) where from_events) as s
    join (select * from user_keys where from_events) as k using (user_id)
),
start_values as materialized (
    -- Every event at a session's start: one row per session but for the tied ones. A user's
    -- sessions start at distinct times (a gap separates them), so (user_key, started_at) is
    -- a session's key. The values of the configured dimensions only, NULL past them (one
    -- branch runs): the expression of a slot past them still costs per row.
    select
        s.user_key,
        s.user_id,
        s.started_at,
        e.event_row,
        filter_value(dims[1], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_1,
        filter_value(dims[2], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_2,
        filter_value(dims[3], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_3,
        filter_value(dims[4], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_4,
        null::varchar as value_5,
        null::varchar as value_6,
        null::varchar as value_7,
        null::varchar as value_8
    from starts as s
    join query_table(scoped_events) as e on e.user_key = s.user_key and e.ts = s.started_at
    where from_events and len(dims) <= 4
    union all
    select
        s.user_key,
        s.user_id,
        s.started_at,
        e.event_row,
        filter_value(dims[1], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_1,
        filter_value(dims[2], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_2,
        filter_value(dims[3], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_3,
        filter_value(dims[4], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_4,
        filter_value(dims[5], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_5,
        filter_value(dims[6], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_6,
        filter_value(dims[7], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_7,
        filter_value(dims[8], s.platform, s.channel, s.campaign, e.country, e.properties)
            as value_8
    from starts as s
    join query_table(scoped_events) as e on e.user_key = s.user_key and e.ts = s.started_at
    where from_events and len(dims) > 4
),
tied as materialized (
    select user_key, started_at
    from start_values
    where from_events
    group by user_key, started_at
    having count(*) > 1
),
tied_values as (
    -- The tied sessions' first events, by event id (fetched by the events' rows).
    select
        any_value(t.user_id) as user_id,
        t.started_at,
        arg_min(
            {
                'value_1': t.value_1,
                'value_2': t.value_2,
                'value_3': t.value_3,
                'value_4': t.value_4,
                'value_5': t.value_5,
                'value_6': t.value_6,
                'value_7': t.value_7,
                'value_8': t.value_8
            },
            e.event_id
        ) as first_values
    from (select * from start_values semi join tied using (user_key, started_at)) as t
    join (select event_row, event_id from query_table(scoped_events)) as e using (event_row)
    where from_events
    group by t.user_key, t.started_at
)
select
    user_id,
    started_at,
    filter_value(dims[1], platform, channel, campaign, null, null) as value_1,
    filter_value(dims[2], platform, channel, campaign, null, null) as value_2,
    filter_value(dims[3], platform, channel, campaign, null, null) as value_3,
    filter_value(dims[4], platform, channel, campaign, null, null) as value_4,
    filter_value(dims[5], platform, channel, campaign, null, null) as value_5,
    filter_value(dims[6], platform, channel, campaign, null, null) as value_6,
    filter_value(dims[7], platform, channel, campaign, null, null) as value_7,
    filter_value(dims[8], platform, channel, campaign, null, null) as value_8
from query_table(scoped_sessions)
where not from_events
union all
select user_id, started_at, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
from start_values
anti join tied using (user_key, started_at)
where from_events
union all
select user_id, started_at, unnest(first_values)
from tied_values;
