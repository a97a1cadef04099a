-- sql/staging/read_lines.sql: one JSON-lines file -> file_lines, which stage_lines.sql adds to
-- raw_records. Lines are read raw (no JSON sniffing: real logs mix timestamp precisions and odd
-- rows); undecodable lines land in the reader's rejects table.
-- Physical line numbers: the reader numbers accepted lines by rowid and rejected ones by line,
-- so accepted row k sits at line k + (rejected lines before it): stage_rejected_lines.sql
-- renumbers them and adds the rejected lines, run only when the reader rejected some (rare:
-- a statement less per file, and no scan of raw_records, for every other file).
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
    -- Two scan threads: a serial read was ~0.2 s of a 1M-record load's ~3 s with the other
    -- core idle. The insert keeps the file's order (rowid = line), and peak memory with
    -- huge lines stays what the serial scan took (one or four 100 MB lines: ~290 / ~890 MB
    -- either way, tests/ingest/test_ingest.py checks the bound).
    parallel = true,
    -- The threads split the file by the reader's buffers, which must be larger than this
    -- (16 times, by default): with room for 512 MB lines a 140 MB file is one buffer, read by
    -- one thread after all (0.23 s wall for 1M records, against 0.14 s on two). So a file is
    -- read with DuckDB's default (2 MB) first; one with a longer line (the reader rejects it
    -- as LINE SIZE OVER MAXIMUM) is read again with room for 512 MB (assets/ingest/load.py).
    max_line_size = $max_line_size
);
