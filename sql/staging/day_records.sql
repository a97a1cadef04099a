-- The validated records of one arrival day of the load (parse_records.sql validated all its
-- days at once): what load_partition.sql replaces the day with.
create or replace temp table parsed_records as
select * from parsed_batch where arrival_date = $arrival_date;
