-- The number of the next change recorded in mart_changes (assets/marts/changes.py): above every
-- number recorded or applied, so numbers only grow, also after mart_changes has been emptied of
-- what every mart applied.
create or replace temp macro next_change_no() as
    greatest(
        coalesce((select max(change_no) from mart_changes), 0),
        coalesce((select max(applied_change_no) from mart_state), 0)
    ) + 1;
