-- Raw records of the arrival days of one load (one day, or a range of days loaded together),
-- one row per input record (CONTRACT §2), before validation. The ingest fills it file by file
-- with DuckDB's readers; `parse_records.sql` validates all its days in one pass.
create or replace temp table raw_records (
    source_file varchar not null,
    line_no bigint,
    raw varchar,
    raw_bytes bigint,
    tabular boolean not null,   -- a CSV/Parquet row: properties may be top-level columns
    read_error varchar,         -- set when the reader could not decode the record
    arrival_date date not null
);
