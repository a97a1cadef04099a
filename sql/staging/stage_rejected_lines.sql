-- The rejected lines of the JSON-lines file stage_lines.sql just read (the reader's rejects
-- table), when there are any: they shift the line numbers of the accepted lines after them,
-- and each is a record too (malformed_record).
create or replace temp table file_rejects as
select line as line_no, csv_line, error_message,
       line - row_number() over (order by line) as accepted_before
from (select line, any_value(csv_line) as csv_line, any_value(error_message) as error_message
      from reject_errors group by line);

-- A separate statement: in the insert, the count cost a join for every line of every file.
update raw_records
set line_no = line_no + (
    select count(*) from file_rejects as r where r.accepted_before < raw_records.line_no
)
where source_file = $source_file and arrival_date = $arrival_date;

insert into raw_records
select $source_file, line_no, ltrim(csv_line, chr(10)), strlen(csv_line), false,
       'line is not valid UTF-8: ' || error_message, $arrival_date
from file_rejects;
