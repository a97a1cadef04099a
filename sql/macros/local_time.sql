-- Dates in the project's time zone (CONTRACT §3, `timezone`). `ts` is always UTC; a day, week or
-- month is cut at the zone's midnight, so a DST day holds 23 or 25 hours of events and every
-- duration (session gaps, funnel windows) stays in absolute time. UTC skips the conversion: the
-- default stays as cheap as a cast.
create or replace temp macro local_date(ts, zone) as
    case when zone = 'UTC' then ts::date else timezone(zone, timezone('UTC', ts))::date end;
