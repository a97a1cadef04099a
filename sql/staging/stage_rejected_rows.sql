-- The rejected rows of the CSV file stage_csv.sql just read (the reader's rejects table), when
-- there are any: they shift the line numbers of the accepted rows after them (row k, staged
-- at line 1 + k, moves down by the rejected rows before it), and each is a record too
-- (malformed_record).
create or replace temp table file_rejects as
select line as line_no, csv_line, error_message,
       line - 1 - row_number() over (order by line) as accepted_before
from (select line, any_value(csv_line) as csv_line, any_value(error_message) as error_message
      from reject_errors group by line);

update raw_records
set line_no = line_no + (
    select count(*) from file_rejects as r where r.accepted_before < raw_records.line_no - 1
)
where source_file = $source_file and arrival_date = $arrival_date;

insert into raw_records
select $source_file, line_no, csv_line, strlen(csv_line), true,
       'CSV row does not match the header: ' || error_message, $arrival_date
from file_rejects;
