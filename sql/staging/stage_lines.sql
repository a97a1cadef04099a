-- One JSON-lines file -> raw_records. Lines are read raw (no JSON sniffing: real logs mix
-- timestamp precisions and odd rows); undecodable lines land in the reader's rejects table.
-- Physical line numbers: accepted lines are numbered in the order the (one-thread) reader
-- yields them, rejected ones by the reader's line, so accepted row k sits at line
-- k + (rejected lines before it): stage_rejected_lines.sql renumbers them and adds the
-- rejected lines, run only when the reader rejected some (rare: a statement less per file,
-- and no scan of raw_records, for every other file).
drop table if exists reject_errors;
drop table if exists reject_scans;

-- Straight from the reader, numbered on the way (no staging table): storing the lines and
-- copying them was 0.09 s more of this one-thread statement for a 1M-line file (session 12).
-- row_number() over () is a streaming window: it numbers rows in the order the one scan
-- thread reads them, i.e. file order; the blank-line filter runs after the numbering.
insert into raw_records
select $source_file, line_no, if(strlen(line) > 1048576, left(line, 65536), line),
       strlen(line), false, null, $arrival_date
from (
    select line, row_number() over () as line_no
    from read_csv(
        $path,
        columns = {'line': 'VARCHAR'},
        header = false,
        delim = '\x1f',
        quote = '',
        escape = '',
        -- '\r\n' reads LF and CRLF files; an old Mac file (CR alone) gets '\r' (the caller
        -- looks).
        new_line = $new_line,
        auto_detect = false,
        strict_mode = false,
        hive_partitioning = false,
        store_rejects = true,
        -- One scan thread, deliberately: DuckDB 2.0's parallel reader, which splits a file
        -- by buffers of 16 x max_line_size, dropped one ordinary line of a 1M-line, 150 MB
        -- file when the buffers were 32 MB (benchmarks.ingest_bench's third identity day,
        -- session 12); with room for 512 MB lines a file under 8 GB is one buffer anyway, so
        -- `false` costs nothing (0.22-0.25 s for that file either way) and rules it out for
        -- larger files too. The line numbers above rely on it as well: one thread yields the
        -- lines in file order.
        parallel = false,
        max_line_size = 536870912
    )
)
-- An oversized line keeps only its first 64 KiB (and its size; see the select): it is
-- quarantined anyway, and carrying the whole text through validation would multiply peak
-- memory. Blank lines are not records. (The first-character tests spare a trim of every line;
-- a JSON record's brace, the usual first byte, settles it before left() cuts a character.)
where line is not null
  and (starts_with(line, '{')
       or left(line, 1) not in (chr(32), chr(9), chr(13))
       or trim(line, chr(32) || chr(9) || chr(13)) <> '');
