"""A small pure-Python reference for users, sessions, daily_metrics, retention and cohorts.

Written straight from CONTRACT §3, one definition at a time, with no shared code with the SQL
models: the tests compare every row of each table with these functions. Clarity over speed.

An event is a dict with at least `event_id`, `user_id`, `event`, `ts` (naive UTC datetime),
`platform`, `channel`, `campaign` and `revenue` (None when absent). Days are cut in the
project's `timezone` (CONTRACT §3), with the standard library's zoneinfo.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.settings import DEFAULT_RETENTION, RetentionDefinition

Event = dict[str, Any]
Row = dict[str, Any]

DIMENSIONS = ("platform", "channel")
RETENTION_PERIODS = {"day": 30, "week": 12, "month": 12}
COHORT_PERIODS = 12
UNKNOWN = "unknown"  # the segment of a NULL platform/channel (daily_metrics, cohorts)


def day_of(ts: dt.datetime, timezone: str = "UTC") -> dt.date:
    """The calendar day of a UTC time in `timezone`."""
    return ts.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(timezone)).date()


def event_order(event: Event) -> tuple[dt.datetime, str]:
    """A user's events in time order; equal timestamps ordered by event_id."""
    return (event["ts"], event["event_id"])


def events_by_user(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        grouped[event["user_id"]].append(event)
    return {user: sorted(evs, key=event_order) for user, evs in grouped.items()}


def segment_of(event: Event, dimension: str) -> str:
    value = event[dimension]
    return UNKNOWN if value is None else value


# --- sessions -------------------------------------------------------------------------------


def sessions(events: list[Event], gap_seconds: int) -> list[Row]:
    """A gap longer than `gap_seconds` between a user's consecutive events starts a session."""
    rows = []
    for user, evs in events_by_user(events).items():
        groups: list[list[Event]] = []
        for event in evs:
            gap = (event["ts"] - groups[-1][-1]["ts"]).total_seconds() if groups else None
            if gap is None or gap > gap_seconds:
                groups.append([event])
            else:
                groups[-1].append(event)
        for n, group in enumerate(groups, start=1):
            first, last = group[0], group[-1]
            rows.append(
                {
                    "session_id": f"{user}-{n}",
                    "user_id": user,
                    "started_at": first["ts"],
                    "ended_at": last["ts"],
                    "duration_seconds": (last["ts"] - first["ts"]).total_seconds(),
                    "events": len(group),
                    "platform": first["platform"],
                    "channel": first["channel"],
                }
            )
    return rows


# --- users ----------------------------------------------------------------------------------


def users(
    events: list[Event], conversion_event: str, gap_seconds: int, timezone: str = "UTC"
) -> list[Row]:
    """One row per user; acquisition fields from the first event."""
    session_counts: dict[str, int] = defaultdict(int)
    for session in sessions(events, gap_seconds):
        session_counts[session["user_id"]] += 1
    rows = []
    for user, evs in events_by_user(events).items():
        first, last = evs[0], max(evs, key=lambda e: e["ts"])
        rows.append(
            {
                "user_id": user,
                "first_seen_at": first["ts"],
                "first_seen_date": day_of(first["ts"], timezone),
                "acquisition_platform": first["platform"],
                "acquisition_channel": first["channel"],
                "acquisition_campaign": first["campaign"],
                "last_seen_at": last["ts"],
                "events": len(evs),
                "sessions": session_counts[user],
                "purchases": sum(e["event"] == conversion_event for e in evs),
                "revenue": sum(e["revenue"] or 0.0 for e in evs),
            }
        )
    return rows


# --- daily_metrics --------------------------------------------------------------------------


def daily_metrics(
    events: list[Event], conversion_event: str, gap_seconds: int, timezone: str = "UTC"
) -> list[Row]:
    """One row per day and segment: ('all', 'all') on every day of the range, and a segment row
    for each (day, platform/channel) that has events."""
    if not events:
        return []
    first_events = [evs[0] for evs in events_by_user(events).values()]
    session_firsts = [
        {"ts": s["started_at"], "platform": s["platform"], "channel": s["channel"]}
        for s in sessions(events, gap_seconds)
    ]
    first_day = min(day_of(e["ts"], timezone) for e in events)
    last_day = max(day_of(e["ts"], timezone) for e in events)
    rows = []
    for offset in range((last_day - first_day).days + 1):
        day = first_day + dt.timedelta(days=offset)
        keys = [("all", "all")] + [
            (dimension, segment)
            for dimension in DIMENSIONS
            for segment in sorted(
                {segment_of(e, dimension) for e in events if day_of(e["ts"], timezone) == day}
            )
        ]
        for dimension, segment in keys:
            todays = [e for e in events if counted(e, day, dimension, segment, timezone)]
            active = {e["user_id"] for e in todays}
            purchasers = {e["user_id"] for e in todays if e["event"] == conversion_event}
            rows.append(
                {
                    "metric_date": day,
                    "dimension": dimension,
                    "segment": segment,
                    "active_users": len(active),
                    "new_users": sum(
                        counted(e, day, dimension, segment, timezone) for e in first_events
                    ),
                    "sessions": sum(
                        counted(s, day, dimension, segment, timezone) for s in session_firsts
                    ),
                    "events": len(todays),
                    "purchasers": len(purchasers),
                    "revenue": sum(e["revenue"] or 0.0 for e in todays),
                    "conversion_rate": len(purchasers) / len(active) if active else 0.0,
                }
            )
    return rows


def counted(
    event: Event, day: dt.date, dimension: str, segment: str, timezone: str = "UTC"
) -> bool:
    """On `day` and, unless the dimension is 'all', in `segment` by the event's own value."""
    in_segment = dimension == "all" or segment_of(event, dimension) == segment
    return day_of(event["ts"], timezone) == day and in_segment


# --- calendar periods (weeks start on Monday) -----------------------------------------------


def period_start(granularity: str, day: dt.date) -> dt.date:
    if granularity == "day":
        return day
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def period_index(granularity: str, cohort_start: dt.date, day: dt.date) -> int:
    """Calendar difference between the cohort's period and the period of `day`."""
    start = period_start(granularity, day)
    if granularity == "day":
        return (start - cohort_start).days
    if granularity == "week":
        return (start - cohort_start).days // 7
    return (start.year - cohort_start.year) * 12 + start.month - cohort_start.month


def nth_period_start(granularity: str, cohort_start: dt.date, n: int) -> dt.date:
    if granularity == "day":
        return cohort_start + dt.timedelta(days=n)
    if granularity == "week":
        return cohort_start + dt.timedelta(days=7 * n)
    months = cohort_start.month - 1 + n
    return dt.date(cohort_start.year + months // 12, months % 12 + 1, 1)


def period_is_complete(granularity: str, cohort_start: dt.date, n: int, last_date: dt.date) -> bool:
    """Period n of the cohort has ended (its last day is on or before the last event date)."""
    last_day = nth_period_start(granularity, cohort_start, n + 1) - dt.timedelta(days=1)
    return last_day <= last_date


# --- retention ------------------------------------------------------------------------------


def retention(
    events: list[Event],
    definitions: tuple[RetentionDefinition, ...] = DEFAULT_RETENTION,
    timezone: str = "UTC",
) -> list[Row]:
    """Per definition: cohort = period of the user's first event (or first `start_event`);
    returning = the user's events (or `return_event` events) at or after that start; `exact`
    and `on_or_after` retention for periods 0..30 (day) / 0..12 (week, month) that started on
    or before the last event date (of all events)."""
    if not events:
        return []
    last_date = max(day_of(e["ts"], timezone) for e in events)
    by_user = events_by_user(events)
    rows = []
    for definition in definitions:
        starts = {}
        for user, evs in by_user.items():
            eligible = [e for e in evs if definition.start_event in (None, e["event"])]
            if eligible:
                starts[user] = eligible[0]["ts"]
        returning = {
            user: [
                day_of(e["ts"], timezone)
                for e in by_user[user]
                if e["ts"] >= start and definition.return_event in (None, e["event"])
            ]
            for user, start in starts.items()
        }
        for granularity, max_period in RETENTION_PERIODS.items():
            cohorts: dict[dt.date, list[str]] = defaultdict(list)
            for user, start in starts.items():
                cohorts[period_start(granularity, day_of(start, timezone))].append(user)
            for cohort_start, members in sorted(cohorts.items()):
                active = {
                    user: {period_index(granularity, cohort_start, day) for day in returning[user]}
                    for user in members
                }
                for n in range(max_period + 1):
                    if nth_period_start(granularity, cohort_start, n) > last_date:
                        break
                    exact = sum(n in periods for periods in active.values())
                    later = sum(any(p >= n for p in periods) for periods in active.values())
                    for mode, retained in (("exact", exact), ("on_or_after", later)):
                        rows.append(
                            {
                                "definition": definition.name,
                                "granularity": granularity,
                                "mode": mode,
                                "cohort_start": cohort_start,
                                "cohort_users": len(members),
                                "period": n,
                                "retained_users": retained,
                                "retention_rate": retained / len(members),
                                "is_complete": period_is_complete(
                                    granularity, cohort_start, n, last_date
                                ),
                            }
                        )
    return rows


# --- cohorts --------------------------------------------------------------------------------


def cohorts(events: list[Event], timezone: str = "UTC") -> list[Row]:
    """Acquisition cohorts by week/month × all/platform/channel (segment of the first event),
    periods 0..12 that started on or before the last event date."""
    if not events:
        return []
    last_date = max(day_of(e["ts"], timezone) for e in events)
    by_user = events_by_user(events)
    rows = []
    for granularity in ("week", "month"):
        groups: dict[tuple[dt.date, str, str], list[str]] = defaultdict(list)
        for user, evs in by_user.items():
            cohort_start = period_start(granularity, day_of(evs[0]["ts"], timezone))
            groups[(cohort_start, "all", "all")].append(user)
            for dimension in DIMENSIONS:
                groups[(cohort_start, dimension, segment_of(evs[0], dimension))].append(user)
        for (cohort_start, dimension, segment), members in sorted(groups.items()):
            cumulative = 0.0
            for n in range(COHORT_PERIODS + 1):
                if nth_period_start(granularity, cohort_start, n) > last_date:
                    break
                in_period = [
                    e
                    for user in members
                    for e in by_user[user]
                    if period_index(granularity, cohort_start, day_of(e["ts"], timezone)) == n
                ]
                active = len({e["user_id"] for e in in_period})
                revenue = sum(e["revenue"] or 0.0 for e in in_period)
                cumulative += revenue
                rows.append(
                    {
                        "cohort_granularity": granularity,
                        "cohort_start": cohort_start,
                        "dimension": dimension,
                        "segment": segment,
                        "cohort_users": len(members),
                        "period_index": n,
                        "active_users": active,
                        "retention_rate": active / len(members),
                        "churn_rate": 1 - active / len(members),
                        "revenue": revenue,
                        "cumulative_revenue": cumulative,
                        "ltv": cumulative / len(members),
                        "is_complete": period_is_complete(granularity, cohort_start, n, last_date),
                    }
                )
    return rows
