-- sql/intermediate/funnels/funnel_copies.sql: temp view funnel_copies, the events every funnel
-- model reads (CONTRACT §3 Funnel semantics): the kept copies of event_copies (`events`), with
-- the user's integer key and `copy_row`, the copy's rowid in event_copies (an occurrence's
-- identity, also used to fetch the copy again). This full build reads every user;
-- funnel_copies_update.sql holds the same columns for the users whose events changed, so that
-- the same models recompute only their attempts.
create or replace temp view funnel_copies as
select
    rowid as copy_row,
    user_key,
    event_id,
    event,
    ts,
    platform,
    channel,
    campaign,
    country,
    properties
from event_copies
where kept;
