-- sql/journal/tables.sql: the publish journal (internal; pipelines/journal.py). A warehouse file
-- knows which generation of publishes it is, and what its build changed since the generation
-- before: per table, the whole table (key_column null) or the key values whose rows it
-- replaced. The next writer catches the standby (that generation before) up with it.
create table if not exists publish_generation (
    generation bigint not null
);

create table if not exists publish_journal (
    table_name varchar not null,
    key_column varchar,
    key_value varchar
);
