-- One JSON-lines file, read into file_lines by read_lines.sql -> raw_records.
-- An oversized line keeps only its first 64 KiB (and its size): it is quarantined anyway,
-- and carrying the whole text through validation would multiply peak memory.
insert into raw_records
select $source_file, rowid + 1, if(strlen(line) > 1048576, left(line, 65536), line),
       strlen(line), false, null, $arrival_date
from file_lines
-- Blank lines are not records. (The first-character tests spare a trim of every line; a JSON
-- record's brace, the usual first byte, settles it before left() cuts a character.)
where line is not null
  and (starts_with(line, '{')
       or left(line, 1) not in (chr(32), chr(9), chr(13))
       or trim(line, chr(32) || chr(9) || chr(13)) <> '');
