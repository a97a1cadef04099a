-- Ingest tables (CONTRACT §2-3). Created once; partition loads replace rows inside them.
create table if not exists events (
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
    line_no bigint not null
);

-- Every valid record, duplicates included: the earliest copy of an event id is chosen from
-- here, so the result does not depend on the order in which partitions were loaded.
create table if not exists event_copies as select *, null::varchar as raw from events limit 0;

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
