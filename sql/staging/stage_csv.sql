-- One CSV file -> raw_records: each row as a JSON object of its columns (all text).
-- The header is read by the caller and bound as $columns: DuckDB's sniffer gives up on
-- files with ragged rows. Rows with missing cells land in the rejects table (malformed_record).
drop table if exists reject_errors;
drop table if exists reject_scans;

create or replace temp table file_rows as
select *
from read_csv(
    $path,
    columns = $columns,
    header = true,
    auto_detect = false,
    delim = ',',
    quote = '"',
    escape = '"',
    -- Strict: a row with more cells than the header is rejected (malformed_record), not cut
    -- to fit (its extra value would shift unseen).
    strict_mode = true,
    null_padding = false,
    hive_partitioning = false,
    store_rejects = true,
    max_line_size = 536870912
);

-- Row k of the file is at line 1 + k (after the header) + the rejected rows before it, which
-- stage_rejected_rows.sql adds when the reader rejected some (rare).
insert into raw_records
select $source_file, 1 + k, raw, strlen(raw), true, null, $arrival_date
from (select rowid + 1 as k, to_json(file_rows)::varchar as raw from file_rows);
