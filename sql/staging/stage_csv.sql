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

create or replace temp table file_rejects as
select line as line_no, csv_line, error_message,
       line - 1 - row_number() over (order by line) as accepted_before
from (select line, any_value(csv_line) as csv_line, any_value(error_message) as error_message
      from reject_errors group by line);

insert into raw_records
select $source_file,
       1 + k + (select count(*) from file_rejects r where r.accepted_before < k),
       raw, strlen(raw), true, null, $arrival_date
from (select rowid + 1 as k, to_json(file_rows)::varchar as raw from file_rows);

insert into raw_records
select $source_file, line_no, csv_line, strlen(csv_line), true,
       'CSV row does not match the header: ' || error_message, $arrival_date
from file_rejects;
