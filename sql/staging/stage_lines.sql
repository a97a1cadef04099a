-- One JSON-lines file -> raw_records. Lines are read raw (no JSON sniffing: real logs mix
-- timestamp precisions and odd rows); undecodable lines land in the reader's rejects table.
-- Physical line numbers: the reader numbers accepted lines by rowid and rejected ones by line,
-- so accepted row k sits at line k + (rejected lines before it).
drop table if exists reject_errors;
drop table if exists reject_scans;

create or replace temp table file_lines as
select line
from read_csv(
    $path,
    columns = {'line': 'VARCHAR'},
    header = false,
    delim = '\x1f',
    quote = '',
    escape = '',
    -- '\r\n' reads LF and CRLF files; an old Mac file (CR alone) gets '\r' (the caller looks).
    new_line = $new_line,
    auto_detect = false,
    strict_mode = false,
    hive_partitioning = false,
    store_rejects = true,
    -- One scan thread: parallel scans each buffer a huge line, doubling peak memory.
    parallel = false,
    max_line_size = 536870912
);

create or replace temp table file_rejects as
select line as line_no, csv_line, error_message,
       line - row_number() over (order by line) as accepted_before
from (select line, any_value(csv_line) as csv_line, any_value(error_message) as error_message
      from reject_errors group by line);

-- An oversized line keeps only its first 64 KiB (and its size): it is quarantined anyway,
-- and carrying the whole text through validation would multiply peak memory.
insert into raw_records
select $source_file, rowid + 1, if(strlen(line) > 1048576, left(line, 65536), line),
       strlen(line), false, null, $arrival_date
from file_lines
-- Blank lines are not records. (The first-character test spares a trim of every line.)
where line is not null
  and (left(line, 1) not in (chr(32), chr(9), chr(13)) or trim(line, chr(32) || chr(9) || chr(13)) <> '');

-- Rare: rejected lines shift the line numbers of the accepted lines after them. (A separate
-- statement: in the insert, the count cost a join for every line of every file.)
update raw_records
set line_no = line_no + (
    select count(*) from file_rejects as r where r.accepted_before < raw_records.line_no
)
where source_file = $source_file and arrival_date = $arrival_date
  and exists (select 1 from file_rejects);

insert into raw_records
select $source_file, line_no, ltrim(csv_line, chr(10)), strlen(csv_line), false,
       'line is not valid UTF-8: ' || error_message, $arrival_date
from file_rejects;
