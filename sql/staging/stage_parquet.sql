-- One Parquet file -> raw_records: each row as a JSON object of its columns (types kept).
create or replace temp table file_rows as select * from read_parquet($path, hive_partitioning = false);

insert into raw_records
select $source_file, k, raw, strlen(raw), true, null, $arrival_date
from (select rowid + 1 as k, to_json(file_rows)::varchar as raw from file_rows);
