"""A small pure-Python reference for breakdowns by any configured dimensions (CONTRACT §3
Breakdowns): daily_metrics, cohorts and funnel_steps segments for a list of dimensions and a
`dimension_limit`, written from the contract with no code shared with the SQL.

- A dimension's value of an event: a lifted column (platform, channel, campaign, country), or
  for `properties.<key>` the key's value in `properties` as text (a number as JSON writes it).
- Missing or empty: the segment 'unknown', which never counts toward the limit.
- Kept values: per dimension the `limit` values with the most distinct users over all events,
  ties by value (text order); any other value is the segment 'other'. A lifted column's values
  that differ only in case are one value, shown as most of its users spelt it.

Events are dicts as in tests/reference.py, with `country` and `properties` (a dict) as well.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

import reference
import reference_funnels

from pipelines.settings import Funnel

Event = dict[str, Any]
Row = dict[str, Any]
LIFTED = ("platform", "channel", "campaign", "country")


def value_of(event: Event, dimension: str) -> str | None:
    """The event's value of the dimension, as text; None when missing or empty."""
    if dimension in LIFTED:
        value = event.get(dimension)
    else:
        value = (event.get("properties") or {}).get(dimension.removeprefix("properties."))
        if value is not None and not isinstance(value, str):
            value = json.dumps(value)
    return value if value not in (None, "") else None


def key_of(dimension: str, value: str) -> str:
    """Values of a lifted column that differ only in case are one value (issue 16)."""
    return value.lower() if dimension in LIFTED else value


def kept_values(events: list[Event], dimensions: tuple[str, ...], limit: int) -> dict:
    """Per dimension, the kept keys with the spelling each is shown in: the spelling most of
    its users sent, ties by text."""
    kept = {}
    for dimension in dimensions:
        users: dict[str, set[str]] = defaultdict(set)
        spelt: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for e in events:
            value = value_of(e, dimension)
            if value is not None:
                users[key_of(dimension, value)].add(e["user_id"])
                spelt[key_of(dimension, value)][value].add(e["user_id"])
        spelling = {
            key: min(forms, key=lambda v, forms=forms: (-len(forms[v]), v))
            for key, forms in spelt.items()
        }
        ranked = sorted(users, key=lambda k: (-len(users[k]), spelling[k]))
        kept[dimension] = {key: spelling[key] for key in ranked[:limit]}
    return kept


def segment(event: Event, dimension: str, kept: dict) -> str:
    if dimension == "all":
        return "all"
    value = value_of(event, dimension)
    if value is None:
        return "unknown"
    return kept[dimension].get(key_of(dimension, value), "other")


def daily_metrics(
    events: list[Event],
    conversion_event: str,
    gap_seconds: int,
    dimensions: tuple[str, ...],
    limit: int,
) -> list[Row]:
    """One row per day and segment; a user is active in every segment some event of theirs
    that day is in; new users and sessions by their first event's segment."""
    if not events:
        return []
    kept = kept_values(events, dimensions, limit)
    by_user = reference.events_by_user(events)
    first_events = [evs[0] for evs in by_user.values()]
    session_firsts = _session_first_events(by_user, gap_seconds)
    first_day = min(e["ts"].date() for e in events)
    last_day = max(e["ts"].date() for e in events)
    rows = []
    for offset in range((last_day - first_day).days + 1):
        day = first_day + dt.timedelta(days=offset)
        todays_events = [e for e in events if e["ts"].date() == day]
        keys = [("all", "all")] + sorted(
            {(d, segment(e, d, kept)) for d in dimensions for e in todays_events}
        )
        for dimension, seg in keys:

            def inside(
                e: Event, day: dt.date = day, dimension: str = dimension, seg: str = seg
            ) -> bool:
                return e["ts"].date() == day and segment(e, dimension, kept) == seg

            todays = [e for e in todays_events if inside(e)]
            active = {e["user_id"] for e in todays}
            purchasers = {e["user_id"] for e in todays if e["event"] == conversion_event}
            rows.append(
                {
                    "metric_date": day,
                    "dimension": dimension,
                    "segment": seg,
                    "active_users": len(active),
                    "new_users": sum(inside(e) for e in first_events),
                    "sessions": sum(inside(e) for e in session_firsts),
                    "events": len(todays),
                    "purchasers": len(purchasers),
                    "revenue": sum(e["revenue"] or 0.0 for e in todays),
                    "conversion_rate": len(purchasers) / len(active) if active else 0.0,
                }
            )
    return rows


def cohorts(events: list[Event], dimensions: tuple[str, ...], limit: int) -> list[Row]:
    """tests/reference.py's cohorts, with the segment of each configured dimension of the
    user's first event."""
    if not events:
        return []
    kept = kept_values(events, dimensions, limit)
    rows = [row for row in reference.cohorts(events) if row["dimension"] == "all"]
    for dimension in dimensions:
        # tests/reference.py splits by `platform`: give it this dimension's segments there.
        relabelled = [{**e, "platform": segment(e, dimension, kept)} for e in events]
        rows += [
            {**row, "dimension": dimension}
            for row in reference.cohorts(relabelled)
            if row["dimension"] == "platform"
        ]
    return rows


def funnel_steps(
    events: list[reference_funnels.Event],
    funnel: Funnel,
    dimensions: tuple[str, ...],
    limit: int,
) -> list[Row]:
    """funnel_steps rows: a user's segment is their counted attempt's entry event's."""
    dicts = [_funnel_event_dict(e) for e in events]
    kept = kept_values(dicts, dimensions, limit)
    counted = reference_funnels.counted_attempts(events, funnel)
    segments = {("all", "all")} | {(d, segment(e, d, kept)) for d in dimensions for e in dicts}
    rows = []
    for dimension, seg in sorted(segments):
        members = {
            user: attempt
            for user, attempt in counted.items()
            if segment(_funnel_event_dict(attempt.entry), dimension, kept) == seg
        }
        for row in reference_funnels.steps_rows([], funnel, members):
            if row["dimension"] == "all":
                rows.append({**row, "dimension": dimension, "segment": seg})
    return rows


def _session_first_events(by_user: dict[str, list[Event]], gap_seconds: int) -> list[Event]:
    firsts = []
    for evs in by_user.values():
        previous = None
        for e in evs:
            if previous is None or (e["ts"] - previous["ts"]).total_seconds() > gap_seconds:
                firsts.append(e)
            previous = e
    return firsts


def _funnel_event_dict(e: reference_funnels.Event) -> Event:
    return {
        "user_id": e.user_id,
        "platform": e.platform,
        "channel": e.channel,
        "campaign": e.campaign,
        "country": e.country,
        "properties": e.properties,
    }
