"""A small pure-Python reference for the funnel tables, written from CONTRACT §3 (Funnel
semantics) and the definitions documented in `sql/intermediate/funnels/funnel_attempts.sql`, independently of
the SQL: every attempt is enumerated and matched by brute force.

- ordered: an attempt starts at every step-1 event (t0); step k is the earliest (by time, then
  event id) event of step k at or after the step k-1 match, not already used by the attempt, no
  later than t0 + window.
- strict: as ordered, and an event of the user strictly between two matched steps (in time)
  ends the attempt.
- unordered: an attempt starts at every event of any step; the steps are filled by distinct
  events inside [t0, t0 + window] (a step listed m times needs m of them, earliest first); the
  attempt reaches the number of filled steps, its times are the filled times, sorted.
- a step with `where` matches the events of its name whose value of every key, as text (a
  lifted column, else the `properties` value as JSON writes it), is one of the listed values.
- exclusions: an attempt that matched `to_step` with an exclusion event strictly between (in
  time) its `from_step` and `to_step` events is dropped, whole.
A user's furthest step is the best remaining attempt's; the counted attempt is the earliest
(t0, event id) attempt reaching it; a user with no attempt left is not in the funnel. Segments
are the counted entry event's platform/channel (NULL = 'unknown').
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from reference import day_of

from pipelines.settings import Funnel

Row = dict[str, Any]


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: str
    event: str
    ts: dt.datetime
    platform: str | None = "web"
    channel: str | None = "organic"
    properties: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None
    country: str | None = None

    @property
    def order(self) -> tuple[dt.datetime, str]:
        return (self.ts, self.event_id)


@dataclass(frozen=True)
class Attempt:
    entry: Event
    times: tuple[dt.datetime, ...]


def matches(event: Event, name: str, where: tuple) -> bool:
    """The event is of that name and every key's value, as text, is one of the listed ones."""
    return event.event == name and all(_text(event, key) in values for key, values in where)


def _text(event: Event, key: str) -> str | None:
    if key in ("platform", "channel", "campaign", "country"):
        return getattr(event, key)
    value = event.properties.get(key)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _excluded(own: list[Event], funnel: Funnel, attempt: Attempt) -> bool:
    times = attempt.times
    return any(
        x.to_step <= len(times)
        and any(
            e.event == x.event and times[x.from_step - 1] < e.ts < times[x.to_step - 1] for e in own
        )
        for x in funnel.exclusions
    )


def funnel_tables(
    events: list[Event], funnels: tuple[Funnel, ...], timezone: str = "UTC"
) -> dict[str, list[Row]]:
    """The expected `funnel_steps` and `funnel_daily` rows, days cut in `timezone`."""
    counted = {f.name: counted_attempts(events, f) for f in funnels}
    last_date = max((day_of(e.ts, timezone) for e in events), default=None)
    return {
        "funnel_steps": [row for f in funnels for row in steps_rows(events, f, counted[f.name])],
        "funnel_daily": [
            row for f in funnels for row in daily_rows(f, counted[f.name], last_date, timezone)
        ],
    }


def counted_attempts(events: list[Event], funnel: Funnel) -> dict[str, Attempt]:
    """Per user: the earliest attempt that reaches the user's furthest step."""
    result = {}
    for user, own in _by_user(events).items():
        attempts = [a for a in _attempts(own, funnel) if not _excluded(own, funnel, a)]
        if not attempts:
            continue
        furthest = max(len(a.times) for a in attempts)
        result[user] = min(
            (a for a in attempts if len(a.times) == furthest), key=lambda a: a.entry.order
        )
    return result


def _attempts(own: list[Event], funnel: Funnel):
    window = dt.timedelta(seconds=funnel.window_seconds)
    steps = list(zip(funnel.steps, funnel.filters, strict=True))
    if funnel.order == "unordered":
        for entry in own:
            if any(matches(entry, *step) for step in steps):
                yield _unordered_attempt(own, steps, entry, window)
        return
    for entry in own:
        if matches(entry, *steps[0]):
            yield _sequential_attempt(own, funnel, steps, entry, window)


def _sequential_attempt(
    own: list[Event], funnel: Funnel, steps: list, entry: Event, window: dt.timedelta
) -> Attempt:
    matched = [entry]
    for step in steps[1:]:
        previous = matched[-1]
        candidates = [
            e
            for e in own
            if matches(e, *step)
            and e.ts >= previous.ts
            and e.ts <= entry.ts + window
            and all(e.event_id != m.event_id for m in matched)
        ]
        if not candidates:
            break
        found = min(candidates, key=lambda e: e.order)
        if funnel.order == "strict" and any(previous.ts < e.ts < found.ts for e in own):
            break
        matched.append(found)
    return Attempt(entry, tuple(m.ts for m in matched))


def _unordered_attempt(
    own: list[Event], steps: list, entry: Event, window: dt.timedelta
) -> Attempt:
    inside = sorted(
        (e for e in own if entry.ts <= e.ts <= entry.ts + window), key=lambda e: e.order
    )
    times = []
    for (name, where), wanted in Counter(steps).items():
        times += [e.ts for e in inside if matches(e, name, where)][:wanted]
    return Attempt(entry, tuple(sorted(times)))


def steps_rows(events: list[Event], funnel: Funnel, counted: dict[str, Attempt]) -> list[Row]:
    rows = []
    for dimension, segment in _segments(events):
        members = [a for a in counted.values() if _segment(a.entry, dimension) == segment]
        users = [sum(1 for a in members if len(a.times) >= k) for k in _indexes(funnel)]
        for k, step in zip(_indexes(funnel), funnel.step_names, strict=True):
            gaps = [
                (a.times[k - 1] - a.times[k - 2]).total_seconds()
                for a in members
                if len(a.times) >= k and k > 1
            ]
            rows.append(
                {
                    "funnel": funnel.name,
                    "dimension": dimension,
                    "segment": segment,
                    "step_index": k,
                    "step": step,
                    "users": users[k - 1],
                    "conversion_from_first": _ratio(users[k - 1], users[0]),
                    "conversion_from_previous": 1.0
                    if k == 1
                    else _ratio(users[k - 1], users[k - 2]),
                    "median_seconds_from_previous": statistics.median(gaps) if gaps else None,
                    "avg_seconds_from_previous": statistics.fmean(gaps) if gaps else None,
                }
            )
    return rows


def daily_rows(
    funnel: Funnel, counted: dict[str, Attempt], last_date: dt.date | None, timezone: str = "UTC"
) -> list[Row]:
    days = sorted({day_of(a.entry.ts, timezone) for a in counted.values()})
    window = dt.timedelta(seconds=funnel.window_seconds)
    return [
        {
            "funnel": funnel.name,
            "entry_date": day,
            "step_index": k,
            "step": step,
            "users": sum(
                1
                for a in counted.values()
                if day_of(a.entry.ts, timezone) == day and len(a.times) >= k
            ),
            "is_complete": _whole_window_seen(day, window, last_date),
        }
        for day in days
        for k, step in zip(_indexes(funnel), funnel.step_names, strict=True)
    ]


def _whole_window_seen(day: dt.date, window: dt.timedelta, last_date: dt.date | None) -> bool:
    """An attempt may enter up to the end of `day`; its window then closes `window` later, which
    must be no later than the end of the last event date."""
    if last_date is None:
        return False
    # end(day) + window <= end(last_date), written without adding to dates (the calendar ends).
    return window <= last_date - day


def _segments(events: list[Event]) -> list[tuple[str, str]]:
    found = {("all", "all")}
    for e in events:
        found.add(("platform", _segment(e, "platform")))
        found.add(("channel", _segment(e, "channel")))
    return sorted(found)


def _segment(event: Event, dimension: str) -> str:
    if dimension == "all":
        return "all"
    value = event.platform if dimension == "platform" else event.channel
    return "unknown" if value is None else value


def _by_user(events: list[Event]) -> dict[str, list[Event]]:
    users: dict[str, list[Event]] = {}
    for e in sorted(events, key=lambda e: e.order):
        users.setdefault(e.user_id, []).append(e)
    return users


def _indexes(funnel: Funnel) -> range:
    return range(1, len(funnel.steps) + 1)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
