-- sql/staging/redate_events.sql: the project's `timezone` changed since the stored events were
-- dated. Every event's event_date is cut again in $timezone, in one transaction with the new
-- zone's record (the caller's). The marts' fingerprints hold the zone, so each is then rebuilt in
-- full, and anomaly scoring starts again at the first day whose metrics moved.
-- needs: macros/local_time.sql
update event_copies set event_date = local_date(ts, $timezone)
where event_date <> local_date(ts, $timezone);

delete from event_date_zone;

insert into event_date_zone values ($timezone);
