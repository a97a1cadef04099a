"""A tiny pure-Python reference for ingest field mapping, dedup and identity (CONTRACT §2, §3).

Written from the contract text only (no shared code with the SQL models), to check the `events`
and `identities` tables. Input: raw records grouped by arrival day,
``dict[datetime.date, list[dict]]``; a record's position in its day's list stands for its
(file name, line) order. Output of :func:`events_and_identities`:

- events: one dict per kept event with ``event_id, user_id`` (the person, §2 Identity),
  ``distinct_id`` (the id as sent), ``event, ts`` (naive UTC datetime), ``platform, channel,
  campaign, country, revenue`` (float or None), ``arrival_date``; plus, for debugging,
  ``anonymous_id`` and ``identified_id`` (the record's ids as §2 Identity reads them).
- identities: ``{anonymous_id: (user_id, linked_at, arrival_date)}``.

:func:`load` also returns the quarantine, ``[{"arrival_date", "position", "reason", "raw"}]``.

How each field is read (every name list below is a module constant, tried in order; a JSON
``null`` counts as absent, and so does an empty string for ids, user, event and time):

- event id: ``event_id, uuid, messageId, insert_id, $insert_id`` at top level, then
  ``properties.$insert_id`` (Mixpanel). Absent: a derived id (``derived-`` + a hash of user as
  sent, event, UTC time, properties); it only has to be stable, it is not the implementation's.
- event: ``event, event_type, event_name, name``. See SEGMENT_CALL_EVENTS below.
- time: ``timestamp, time, ts, event_time, originalTimestamp``, then ``properties.time``
  (Mixpanel). ISO 8601 with offset/``Z`` is converted to UTC; naive ISO (incl. Amplitude's
  ``YYYY-MM-DD HH:MM:SS.ffffff``) is UTC; a number (or a string of digits) is epoch seconds, or
  milliseconds when its magnitude is at least EPOCH_MS_THRESHOLD (1e11, i.e. ms after 1973-03).
- user as sent (``distinct_id`` column): ``user_id, distinct_id, userId, anonymous_id,
  anonymousId``, then ``properties.distinct_id`` (Mixpanel); when none is present, the record's
  anonymous id (so an Amplitude row with ``user_id: null`` is sent as its ``device_id``).
  Integers become strings.
- platform: ``platform, $os`` at top level, in ``properties``, in ``event_properties``
  (Amplitude); then ``os_name`` (Amplitude), ``context.os.name`` (Segment).
  channel: ``channel, utm_source`` (same containers), then ``user_properties.utm_source``
  (Amplitude), ``context.campaign.source`` (Segment). campaign: likewise with ``campaign,
  utm_campaign`` / ``context.campaign.name``. revenue: ``revenue, $revenue`` (same containers).
  country: ``country`` (same containers).
- identity (§2): anonymous id = first of ``anonymous_id, anonymousId, device_id, $device_id`` at
  top level, then inside ``properties``; identified id = first of ``user_id, userId, $user_id``
  (top level, then properties), else ``distinct_id`` (top level, then properties) unless it
  equals the anonymous id or starts with ``$device:``. A record with both (and different) links
  them. Per anonymous id the winning link is the smallest (event time, user id, arrival day,
  position). Only records that end in ``events`` link (quarantined records and dropped
  duplicates do not). Person = identified id, else the linked user of the anonymous id, else
  the id as sent. Links are not transitive.

Choices the contract leaves open (kept as constants/small functions to align later):

- VENDOR_LINK_KEYS is empty: Mixpanel's ``$identify`` (``$identified_id``/``$anon_id``),
  ``$merge`` (``$distinct_ids``) and PostHog's ``$anon_distinct_id`` are NOT identity sources,
  because §2 does not list them. They are ordinary events of whoever sent them (Mixpanel's
  ``$identify``/``$merge`` rows carry ``distinct_id`` = the identified user; PostHog's
  ``$identify`` also carries ``$device_id``, so it links through the contract's own keys).
- SEGMENT_CALL_EVENTS: a Segment call without ``event`` (``type`` identify/page/screen/group/
  alias) loads as an event named after its type (``identify``, ``page``, ...), as Segment's own
  warehouse schema keeps each call type; this takes precedence over the ``name`` alias, so a
  page call's page name is NOT its event name. Set an entry to None to fall back to the plain
  aliases (then an identify call is ``missing_event``).
- Vendor identity events (``$identify``, ``$merge``, Segment ``identify``) are kept as events and
  count in event totals, like every record that has a user, an event and a time.
- Quarantine checks run in this order, first failure wins: oversized_record, malformed_record
  (not an object), invalid_type, missing_user_id, missing_event, missing_timestamp,
  invalid_timestamp, future_timestamp (time > arrival day + 2 days, 00:00 UTC), invalid_revenue
  (a number, or a string that parses as a finite float, is accepted; bools are not);
  duplicate_event_id is decided among the records that passed all the others.
- A JSON bool as time is invalid_timestamp; a dict/list as time, id, user or event is
  invalid_type; an integer id/user becomes its decimal string.
- Times: the project timezone is taken as UTC here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections import Counter
from typing import Any

Record = dict[str, Any]
Event = dict[str, Any]
Path = tuple[str, ...]

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_MS_THRESHOLD = 1e11
MAX_RECORD_BYTES = 1024 * 1024
DEVICE_PREFIX = "$device:"

EVENT_ID_PATHS: tuple[Path, ...] = (
    ("event_id",),
    ("uuid",),
    ("messageId",),
    ("insert_id",),
    ("$insert_id",),
    ("properties", "$insert_id"),
)
EVENT_PATHS: tuple[Path, ...] = (("event",), ("event_type",), ("event_name",), ("name",))
TIME_PATHS: tuple[Path, ...] = (
    ("timestamp",),
    ("time",),
    ("ts",),
    ("event_time",),
    ("originalTimestamp",),
    ("properties", "time"),
)
SENT_USER_PATHS: tuple[Path, ...] = (
    ("user_id",),
    ("distinct_id",),
    ("userId",),
    ("anonymous_id",),
    ("anonymousId",),
    ("properties", "distinct_id"),
)
IDENTITY_CONTAINERS: tuple[Path, ...] = ((), ("properties",))
ANONYMOUS_KEYS = ("anonymous_id", "anonymousId", "device_id", "$device_id")
IDENTIFIED_KEYS = ("user_id", "userId", "$user_id")
DISTINCT_ID_KEY = "distinct_id"
# Identity events as the vendors document them: Mixpanel's $identify ($anon_id, $identified_id),
# PostHog's $identify ($anon_distinct_id), Segment's alias (previousId). An anonymous id of
# Mixpanel's form "$device:<id>" is the device id <id>.
VENDOR_LINK_KEYS: tuple[tuple[str, str], ...] = (
    ("$anon_id", "$identified_id"),
    ("$anon_distinct_id", "$identified_id"),
    ("previousId", "$identified_id"),
)

PROPERTY_CONTAINERS: tuple[Path, ...] = ((), ("properties",), ("event_properties",))


def _lifted(names: tuple[str, ...], extra: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple(c + (n,) for c in PROPERTY_CONTAINERS for n in names) + extra


LIFTED_PATHS: dict[str, tuple[Path, ...]] = {
    "platform": _lifted(("platform", "$os"), (("os_name",), ("context", "os", "name"))),
    "channel": _lifted(
        ("channel", "utm_source"),
        (("user_properties", "utm_source"), ("context", "campaign", "source")),
    ),
    "campaign": _lifted(
        ("campaign", "utm_campaign"),
        (("user_properties", "utm_campaign"), ("context", "campaign", "name")),
    ),
    "revenue": _lifted(("revenue", "$revenue"), ()),
    "country": _lifted(
        ("country",),
        (
            ("properties", "$geoip_country_code"),
            ("properties", "mp_country_code"),
            ("context", "location", "country"),
        ),
    ),
}

# Segment calls other than track, named as PostHog's Segment destination names them.
SEGMENT_CALL_EVENTS: dict[str, str | None] = {
    "identify": "$identify",
    "page": "$pageview",
    "screen": "$screen",
    "group": "$groupidentify",
    "alias": "$create_alias",
}


class Reject(Exception):
    """A record goes to quarantine with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason


def get_path(record: Any, path: Path) -> Any:
    """The value at a key path, or None when any step is missing, null or not an object."""
    value = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def first(record: Record, paths: tuple[Path, ...], *, blank_is_absent: bool = False) -> Any:
    for path in paths:
        value = get_path(record, path)
        if value is None or (blank_is_absent and value == ""):
            continue
        return value
    return None


def _as_id(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Reject("invalid_type", f"{field} is {type(value).__name__}")
    return str(value)


def _as_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise Reject("invalid_type", f"{field} is {type(value).__name__}")
    return value if isinstance(value, str) else json.dumps(value)


def parse_time(value: Any) -> dt.datetime:
    """A naive UTC datetime from a contract time form; Reject('invalid_timestamp') otherwise."""
    if isinstance(value, bool):
        raise Reject("invalid_timestamp", repr(value))
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        value = float(value) if "." in value else int(value)
    if isinstance(value, int):
        return EPOCH + (
            dt.timedelta(milliseconds=value)
            if abs(value) >= EPOCH_MS_THRESHOLD
            else dt.timedelta(seconds=value)
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Reject("invalid_timestamp", repr(value))
        seconds = value / 1000 if abs(value) >= EPOCH_MS_THRESHOLD else value
        return EPOCH + dt.timedelta(seconds=seconds)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Reject("invalid_timestamp", value) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    raise Reject("invalid_type", f"timestamp is {type(value).__name__}")


def parse_revenue(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise Reject("invalid_revenue", repr(value))
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise Reject("invalid_revenue", value) from None
    else:
        raise Reject("invalid_revenue", repr(value))
    if not math.isfinite(number):
        raise Reject("invalid_revenue", repr(value))
    return number


def event_name(record: Record) -> Any:
    call = record.get("type")
    if "event" not in record and isinstance(call, str) and SEGMENT_CALL_EVENTS.get(call):
        return SEGMENT_CALL_EVENTS[call]
    return first(record, EVENT_PATHS, blank_is_absent=True)


def _first_key(record: Record, keys: tuple[str, ...]) -> str | None:
    for container in IDENTITY_CONTAINERS:
        for key in keys:
            value = _as_id(get_path(record, container + (key,)), key)
            if value is not None:
                return value
    return None


def anonymous_id(record: Record) -> str | None:
    found = _first_key(record, ANONYMOUS_KEYS)
    if found is None:
        for anon_key, _ in VENDOR_LINK_KEYS:
            found = found or _first_key(record, (anon_key,))
    if found is not None and found.startswith(DEVICE_PREFIX):
        found = found[len(DEVICE_PREFIX) :] or None
    return found


def identified_id(record: Record, anon: str | None) -> str | None:
    found = _first_key(record, IDENTIFIED_KEYS)
    if found is None:
        for _, ident_key in VENDOR_LINK_KEYS:
            found = found or _first_key(record, (ident_key,))
    if found is not None:
        return found
    distinct = _first_key(record, (DISTINCT_ID_KEY,))
    if distinct is None or distinct == anon or distinct.startswith(DEVICE_PREFIX):
        return None
    return distinct


def derived_event_id(user: str, event: str, ts: dt.datetime, properties: Any) -> str:
    text = json.dumps([user, event, ts.isoformat(), properties], sort_keys=True, default=str)
    return "derived-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def parse_record(record: Any, arrival_date: dt.date) -> Event:
    """One record as an event dict (without `user_id`, the person); Reject when quarantined."""
    if len(json.dumps(record, default=str).encode()) > MAX_RECORD_BYTES:
        raise Reject("oversized_record")
    if not isinstance(record, dict):
        raise Reject("malformed_record", "not a JSON object")
    for container in ("properties", "event_properties", "user_properties", "context"):
        if record.get(container) is not None and not isinstance(record[container], dict):
            raise Reject("invalid_type", f"{container} is not an object")
    anon = anonymous_id(record)
    ident = identified_id(record, anon)
    sent = _as_id(first(record, SENT_USER_PATHS, blank_is_absent=True), "user") or anon
    if sent is None:
        raise Reject("missing_user_id")
    event = event_name(record)
    if event is None:
        raise Reject("missing_event")
    if not isinstance(event, str):
        raise Reject("invalid_type", f"event is {type(event).__name__}")
    raw_time = first(record, TIME_PATHS, blank_is_absent=True)
    if raw_time is None:
        raise Reject("missing_timestamp")
    ts = parse_time(raw_time)
    if ts > dt.datetime.combine(arrival_date, dt.time()) + dt.timedelta(days=2):
        raise Reject("future_timestamp", ts.isoformat())
    revenue = parse_revenue(first(record, LIFTED_PATHS["revenue"]))
    lifted = {
        name: _as_text(first(record, LIFTED_PATHS[name]), name)
        for name in ("platform", "channel", "campaign", "country")
    }
    properties = record.get("properties", record.get("event_properties"))
    event_id = _as_id(first(record, EVENT_ID_PATHS, blank_is_absent=True), "event_id")
    return {
        "event_id": event_id or derived_event_id(sent, event, ts, properties),
        "distinct_id": sent,
        "event": event,
        "ts": ts,
        **lifted,
        "revenue": revenue,
        "arrival_date": arrival_date,
        "anonymous_id": anon,
        "identified_id": ident,
    }


def resolve_identities(events: list[Event]) -> dict[str, tuple[str, dt.datetime, dt.date]]:
    """anonymous_id -> (user_id, linked_at, arrival_date) of its winning link (see docstring)."""
    best: dict[str, tuple] = {}
    for position, ev in enumerate(events):
        anon, ident = ev["anonymous_id"], ev["identified_id"]
        if anon is None or ident is None or anon == ident:
            continue
        key = (ev["ts"], ident, ev["arrival_date"], position)
        if anon not in best or key < best[anon]:
            best[anon] = key
    return {anon: (k[1], k[0], k[2]) for anon, k in best.items()}


def person_of(event: Event, identities: dict[str, tuple]) -> str:
    if event["identified_id"] is not None:
        return event["identified_id"]
    link = identities.get(event["anonymous_id"]) if event["anonymous_id"] is not None else None
    return link[0] if link else event["distinct_id"]


def load(records_by_day: dict[dt.date, list[Record]]):
    """(events, identities, quarantine) after loading every given arrival day."""
    parsed: list[Event] = []
    quarantine: list[dict] = []
    for day in sorted(records_by_day):
        for position, record in enumerate(records_by_day[day]):
            try:
                ev = parse_record(record, day)
            except Reject as reject:
                quarantine.append(
                    {
                        "arrival_date": day,
                        "position": position,
                        "reason": reject.reason,
                        "raw": record,
                    }
                )
                continue
            ev["_order"] = (day, position)
            ev["_raw"] = record
            parsed.append(ev)
    kept: dict[str, Event] = {}
    for ev in sorted(parsed, key=lambda e: e["_order"]):  # already in order; kept explicit
        if ev["event_id"] in kept:
            quarantine.append(
                {
                    "arrival_date": ev["arrival_date"],
                    "position": ev["_order"][1],
                    "reason": "duplicate_event_id",
                    "raw": ev["_raw"],
                }
            )
        else:
            kept[ev["event_id"]] = ev
    events = []
    for ev in kept.values():
        ev = dict(ev)
        del ev["_order"], ev["_raw"]
        events.append(ev)
    identities = resolve_identities(events)
    for ev in events:
        ev["user_id"] = person_of(ev, identities)
    return events, identities, quarantine


def events_and_identities(records_by_day: dict[dt.date, list[Record]]):
    """(events, identities): the `events` and `identities` tables as §2/§3 define them."""
    events, identities, _ = load(records_by_day)
    return events, identities


def persons(events: list[Event]) -> dict[str, int]:
    """Event count per person (`user_id`)."""
    return dict(Counter(ev["user_id"] for ev in events))
