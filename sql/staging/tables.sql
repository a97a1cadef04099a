-- Ingest tables (CONTRACT §2-3). Created once; partition loads replace rows inside them.

-- Every valid record ever loaded, duplicates included, with its raw text. `kept` marks the
-- earliest copy of each event id by (arrival_date, source_file, line_no): deciding from all
-- copies makes the result independent of the order in which partitions were loaded.
create table if not exists event_copies (
    event_id varchar not null,
    user_id varchar not null,
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
    raw varchar,
    kept boolean not null
);

-- `events` (CONTRACT §3) is the kept copies: a view, so a load writes each row once.
create view if not exists events as
select event_id, user_id, event, ts, event_date, platform, channel, campaign, country, revenue,
       properties, arrival_date, source_file, line_no
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
