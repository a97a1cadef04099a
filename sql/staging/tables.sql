-- Ingest tables (CONTRACT §2-3): the base schema every writer needs. Created once; partition
-- loads replace rows inside them. Run before every load and funnel build (prepare_base_schema
-- in pipelines/warehouse.py), which also defines the temp macro below.

-- Every valid record ever loaded, duplicates included, with its raw text. `kept` marks the
-- earliest copy of each event id by (arrival_date, source_file, line_no): deciding from all
-- copies makes the result independent of the order in which partitions were loaded.
--
-- The ids and the raw text are stored with zstd: DuckDB's default for text (DICT_FSST) costs
-- about twice the CPU to write these high-cardinality columns (a third of a 1M-record load's
-- write time) and compresses raw worse, the ids ~30% better; reading them is as fast. Text
-- with few values keeps the default. (A warehouse created before keeps its columns as they
-- are: DuckDB cannot change a column's compression in place.)
create table if not exists event_copies (
    event_id varchar not null using compression zstd,
    user_id varchar not null using compression zstd,
    event varchar not null,
    ts timestamp not null,
    event_date date not null,
    platform varchar,
    channel varchar,
    campaign varchar,
    country varchar,
    revenue double,
    properties json,
    arrival_date date not null,
    source_file varchar not null,
    line_no bigint not null,
    raw varchar using compression zstd,
    kept boolean not null,
    user_key integer not null,
    distinct_id varchar using compression zstd,
    anonymous_id varchar,
    identified boolean
);

-- CONTRACT §2 Identity: `user_id` above is the person. A copy whose record had no identified id
-- (identified = false) belongs to the user its anonymous id is linked to, else to distinct_id,
-- the id as sent; load_partition.sql re-attributes such copies when a link appears or changes.
-- distinct_id is empty where the id as sent is the person's own (identified_sent_id in
-- macros/identity.sql); `events` reads it back as user_id.
-- Warehouses from before identity get the columns empty: their copies are taken as identified
-- under the id they have, until their day is loaded again.
alter table event_copies add column if not exists distinct_id varchar;
alter table event_copies add column if not exists anonymous_id varchar;
alter table event_copies add column if not exists identified boolean;

-- One row per anonymous id that some identified record carried: the earliest such record by
-- event time (then the smallest user id) links it to its user (CONTRACT §3 identities).
-- Derived from the kept copies on every load, so it does not depend on load order.
create table if not exists identities (
    anonymous_id varchar not null,
    user_id varchar not null,
    linked_at timestamp not null,
    arrival_date date not null
);

-- A dense integer per user id of the loaded events (internal): the funnel models group and
-- join millions of events by user, which on 10M events is about a third faster on an integer
-- than on the id string. Keys are only ever added, so a key never changes meaning (a user whose
-- events were all removed by a re-load keeps one). An INTEGER holds 2.1 billion users.
create table if not exists user_keys (
    user_id varchar not null,
    user_key integer not null
);

-- The user ids of the relation named `staged` (a user_id column) that have no key yet, each
-- with the next free key (in user id order, so a load's keys are reproducible). The caller
-- inserts them into user_keys; one writer at a time, so the keys are unique.
create or replace temp macro new_user_keys(staged) as table
select
    user_id,
    ((select coalesce(max(user_key), 0) from user_keys) + row_number() over (order by user_id))
        ::integer as user_key
from (select distinct user_id from query_table(staged) where user_id is not null)
anti join user_keys using (user_id);

-- Warehouses written before user keys existed get the column here and their keys from
-- migrate_user_keys.sql.
alter table event_copies add column if not exists user_key integer;

-- `events` (CONTRACT §3) is the kept copies: a view, so a load writes each row once.
create or replace view events as
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
       properties, arrival_date, source_file, line_no, coalesce(distinct_id, user_id) as distinct_id
from event_copies
where kept;

-- Internal: the events with their user key, for the models that group or join by user.
-- Replaced on every run (unlike `events`, which users may depend on) so that its definition
-- follows the code.
create or replace view keyed_events as
select user_key, event_id, user_id, event, ts, platform, channel
from event_copies
where kept;

create table if not exists quarantine (
    arrival_date date not null,
    source_file varchar not null,
    line_no bigint,
    reason varchar not null,
    detail varchar,
    raw varchar,
    event_id varchar
);

create table if not exists ingest_log (
    arrival_date date not null,
    files integer not null,
    records bigint not null,
    loaded bigint not null,
    quarantined bigint not null,
    duplicates bigint not null,
    started_at timestamp not null,
    finished_at timestamp not null,
    unreadable_files integer not null default 0
);

-- Internal: what each arrival day's latest load read, as one hash of its files' names, sizes and
-- modification times, the aliases and the ingest code (assets/ingest/load.py
-- _load_fingerprints). A run does not load a day again while its hash is the same.
create table if not exists load_fingerprints (
    arrival_date date not null,
    fingerprint varchar not null
);

-- Internal: what the loads changed in `events` since the marts last used it, so that sessions,
-- users, daily_metrics and cohorts update only what changed (assets/marts/changes.py). One row
-- per (person, event date) whose events a load added, removed or altered (a new event, a
-- re-sent copy that became the kept one, a re-attributed person, `eventpulse forget`);
-- `change_no` numbers the loads, `source` says who wrote the row: 'events' (a load), or
-- 'sessions' / 'users' (the dates their own update changed, for the marts built from them).
create table if not exists mart_changes (
    change_no bigint not null,
    source varchar not null,
    user_id varchar not null,
    event_date date not null
);

-- Internal: per mart, the last change_no it has applied and the fingerprint (model SQL and
-- settings) it was built with; no row, or another fingerprint, means a full rebuild.
create table if not exists mart_state (
    mart varchar not null,
    applied_change_no bigint not null,
    fingerprint varchar not null
);

-- Internal: the project time zone that event_copies.event_date was cut in (one row; none in a
-- warehouse from before `timezone` existed, whose dates are UTC). A changed `timezone` dates
-- every stored event again (sql/staging/redate_events.sql).
create table if not exists event_date_zone (
    timezone varchar not null
);
