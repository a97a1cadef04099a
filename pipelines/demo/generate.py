"""Demo event logs: a seeded, vectorised simulation of a small online shop (issue 2, item 4).

`generate()` writes what a real landing zone looks like (CONTRACT §2): a few SDK exports per
arrival day in every supported format and alias style, late arrivals, re-sent duplicates and a
sprinkling of every kind of bad record. It also injects a handful of anomalies, writes the labels
a good detector should find (`demo_labels.json`) and a product changelog that explains them
(`docs/changelog.md`, read later by the RAG corpus).

All work is numpy/polars column work: loops run per anomaly, per file style or per file, never
per event. The same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

import numpy as np
import polars as pl
import pyarrow as pa

from pipelines.errors import EventpulseError
from pipelines.settings import METRIC_NAMES

# --- What the shop looks like -------------------------------------------------------------------

PLATFORMS = ("web", "ios", "android")
WEB, IOS, ANDROID = range(3)
PLATFORM_SHARE = np.array([0.50, 0.27, 0.23])
CHANNELS = ("organic", "ads", "email", "referral")
ORGANIC, ADS, EMAIL, REFERRAL = range(4)
CHANNEL_SHARE = np.array([0.40, 0.30, 0.15, 0.15])
CAMPAIGNS = ("spring_sale", "brand_search", "retargeting", "weekly_digest", "winback", "new_in")
CAMPAIGNS_OF_CHANNEL = {ADS: np.array([0, 1, 2]), EMAIL: np.array([3, 4, 5])}
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "ES")
COUNTRY_SHARE = np.array([0.34, 0.12, 0.12, 0.09, 0.11, 0.08, 0.08, 0.06])
PAGES = ("/", "/catalog", "/deals", "/pricing", "/blog", "/help", "/account")
QUERIES = ("running shoes", "rain jacket", "gift card", "headphones", "yoga mat", "backpack")
ITEMS = 400

EVENT_NAMES = (
    "page_view",
    "search",
    "view_item",
    "signup",
    "add_to_cart",
    "purchase",
    "checkout_error",
)
PAGE_VIEW, SEARCH, VIEW_ITEM, SIGNUP, ADD_TO_CART, PURCHASE, CHECKOUT_ERROR = range(7)
# A session's events in time order, so the funnel page_view → signup → add_to_cart → purchase
# keeps its order inside a session; the count of each slot is drawn per session.
SESSION_SLOTS = np.array([PAGE_VIEW, SEARCH, VIEW_ITEM, SIGNUP, PAGE_VIEW, ADD_TO_CART, PURCHASE])

# Arrivals: new users per day grow linearly to GROWTH× by the last day; weekends are quieter.
GROWTH = 2.0
WEEKEND_FACTOR = 0.65
# Repeat visits: a user's daily return rate starts at their engagement and decays with this
# time constant, so most activity is in the first weeks after arrival.
RETURN_DECAY_DAYS = 30.0
ENGAGED_RETURN_RATE = 1.0  # mean daily return rate of users who sign up
BROWSER_RETURN_RATE = 0.25  # ... and of those who only browse
PLATFORM_SWITCH_RATE = 0.12  # return visits on another device than the first one
CHANNEL_STICKINESS = 0.6  # return visits through the acquisition channel, else organic
SIGNUP_RATE = np.array([0.40, 0.30, 0.55, 0.50])  # by channel: email/referral come with intent
CART_RATE_FIRST, CART_RATE_RETURN = 0.35, 0.30
CHECKOUT_RATE = np.array([0.55, 0.60, 0.55])  # by platform, among sessions with a cart
REVENUE_MEDIAN, REVENUE_SIGMA = 48.0, 0.55  # lognormal order value: mostly 20–150
# Gaps between a session's events: ≥ 2 s (distinct whole seconds, so id-less records never
# collide) and ≤ 2 min; with at most 24 events a session lasts < 1 h and starts between 00:30 and
# 22:30 UTC, so sessions never cross midnight and days are always > 30 min apart.
EVENT_GAP_MIN_S, EVENT_GAP_MEAN_S, EVENT_GAP_MAX_S = 2.0, 35.0, 120.0

# Delivery: mobile apps buffer events offline more often than browsers.
LATE_RATE = np.array([0.015, 0.05, 0.05])  # share of sessions uploaded 1–2 days later
DUPLICATE_RATE = 0.01
RESTAMPED_COPY_RATE = 0.2  # re-sent copies whose SDK re-stamped the time (same event id)
BAD_RECORD_RATE = 0.002
MIN_BAD_PER_KIND = 4  # invalid_type has four flavours
OVERSIZED_BYTES = 1_100_000  # CONTRACT §2: a record over 1 MiB is quarantined
OVERSIZED_MARK = "@OVERSIZED@"  # replaced by the large blob when the file is written
BAD_TIMESTAMPS = ("not-a-date", "2026-13-45", "2026-02-30T25:61:00Z")
BAD_REVENUES = ("free", "12,5€")
# A per-record number that picks its time precision (variant % 3), UTC offset (variant // 3 % 5)
# and the flavour of its defect (variant % 2, variant % 4): a multiple of 3 × 5 × 4.
VARIANTS = 60
OFFSETS = (("+02:00", 120), ("-05:00", -300), ("+05:30", 330), ("+00:00", 0), ("-08:00", -480))
GZIP_LEVEL = 1  # fast: compression is the costliest part of writing
GARBAGE_LINES = (
    '{"event": "page_view", "properties": {"page": "/"},,}',
    "<html>502 Bad Gateway</html>",
)
NULL = pl.lit(None, dtype=pl.String)  # a JSON member left out, an empty CSV cell

# Anomalies: none before MIN_HISTORY_DAYS (the detector needs history), all in the last
# ANOMALY_WINDOW_DAYS, none on the last two days.
MIN_HISTORY_DAYS = 21
ANOMALY_WINDOW_DAYS = 60
ANOMALY_KINDS = ("crash", "outage", "paused_channel", "spike", "revenue_spike")
METRICS = METRIC_NAMES  # the daily metrics of CONTRACT §3, in its order
ACTIVITY_METRICS = ("active_users", "new_users", "sessions", "events")
SEGMENTS = (
    ("all", "all"),
    *(("platform", p) for p in PLATFORMS),
    *(("channel", c) for c in CHANNELS),
)

DAY_US = 86_400 * 1_000_000
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote. Ingest should end with `events` rows in `events` and
    `sum(bad_records.values()) + duplicates` rows in `quarantine`."""

    out: Path
    first_date: dt.date
    last_date: dt.date
    users: int  # simulated users, traffic-burst visitors included
    events: int  # distinct valid events
    records: int  # lines/rows written: events, re-sent copies and bad records
    files: int
    bad_records: dict[str, int]  # by CONTRACT §2 quarantine reason
    duplicates: int  # re-sent copies of an event id (quarantine reason duplicate_event_id)
    late_records: int  # events in the folder of a day after the one they happened on
    anomalies: int
    labels: int
    elapsed_seconds: float
    events_per_second: float  # distinct valid events / elapsed seconds, files included

    def __str__(self) -> str:
        bad = sum(self.bad_records.values())
        return (
            f"{self.events:,} events from {self.users:,} users, {self.first_date} to "
            f"{self.last_date}: {self.records:,} records in {self.files:,} files "
            f"({self.late_records:,} late, {self.duplicates:,} re-sent copies, {bad:,} bad), "
            f"{self.anomalies} anomalies with {self.labels} labels; "
            f"{self.elapsed_seconds:.1f} s, {self.events_per_second:,.0f} events/s"
        )


def generate(
    out: Path,
    days: int = 90,
    users: int = 5000,
    seed: int = 7,
    end: dt.date | None = None,
) -> GenerateSummary:
    """Write `days` days of demo event files ending on `end` (default: yesterday UTC) under
    `out/landing/events/date=YYYY-MM-DD/`, plus `out/demo_labels.json` and
    `out/docs/changelog.md`. Replaces the files a previous run wrote; leaves other files alone."""
    started = time.perf_counter()
    if days < 1 or users < 1:
        raise EventpulseError(
            f"Demo data needs at least 1 day and 1 user (got days={days}, users={users}); "
            "pass positive numbers."
        )
    last = end or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    calendar = Calendar(first=last - dt.timedelta(days=days - 1), days=days)
    rng = np.random.default_rng(seed)

    anomalies = plan_anomalies(rng, days)
    population = simulate_users(rng, calendar, users)
    sessions = simulate_sessions(rng, calendar, population)
    sessions, population, incidents = inject_session_anomalies(
        rng, calendar, anomalies, sessions, population
    )
    events = simulate_events(rng, calendar, sessions, population)
    events, incidents = inject_event_anomalies(rng, anomalies, events, incidents)
    labels = honest_labels(calendar, daily_metrics(events, sessions, days), anomalies)

    records, delivery = deliver(rng, calendar, events)
    files = write_landing(Path(out), calendar, records)
    write_labels(Path(out) / "demo_labels.json", labels)
    write_changelog(Path(out) / "docs" / "changelog.md", rng, calendar, incidents)

    elapsed = time.perf_counter() - started
    return GenerateSummary(
        out=Path(out),
        first_date=calendar.first,
        last_date=last,
        users=len(population.first_day),
        events=events.height,
        records=records.height,
        files=files,
        bad_records=delivery.bad_records,
        duplicates=delivery.duplicates,
        late_records=delivery.late_records,
        anomalies=len(anomalies),
        labels=len(labels),
        elapsed_seconds=round(elapsed, 3),
        events_per_second=round(events.height / elapsed, 1),
    )


# --- Calendar and anomaly plan ------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    first: dt.date
    days: int

    def date(self, day: int) -> dt.date:
        return self.first + dt.timedelta(days=int(day))

    def start_us(self, day: np.ndarray | int) -> np.ndarray | int:
        """Microseconds since the epoch at 00:00 UTC of a day index."""
        return ((self.first - EPOCH).days + np.asarray(day, dtype=np.int64)) * DAY_US

    def weekend(self) -> np.ndarray:
        weekday = (self.first.weekday() + np.arange(self.days)) % 7
        return weekday >= 5


@dataclass(frozen=True)
class Anomaly:
    kind: str  # one of ANOMALY_KINDS
    days: tuple[int, ...]  # day indexes it covers


def plan_anomalies(rng: np.random.Generator, days: int) -> list[Anomaly]:
    """Spread one anomaly of each kind over the last ANOMALY_WINDOW_DAYS, leaving the first
    MIN_HISTORY_DAYS as history, at least two days apart (the paused channel lasts two days)."""
    low = max(min(MIN_HISTORY_DAYS, days // 2), days - ANOMALY_WINDOW_DAYS)
    high = days - 3
    count = len(ANOMALY_KINDS)
    step = (high - 1 - low) / (count - 1)
    if step < 2:
        return []
    jitter_max = int(step) - 2
    kinds = [ANOMALY_KINDS[i] for i in rng.permutation(count)]
    plan = []
    for i, kind in enumerate(kinds):
        jitter = int(rng.integers(0, jitter_max + 1)) if i < count - 1 else 0
        day = low + int(i * step) + jitter
        plan.append(Anomaly(kind, (day, day + 1) if kind == "paused_channel" else (day,)))
    return plan


# --- Users and sessions -------------------------------------------------------------------------


class Columns:
    """A dataclass of equally long numpy arrays that can be subset and appended row-wise."""

    def take(self, rows: np.ndarray) -> Self:
        return type(self)(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def append(self, other: Self) -> Self:
        return type(self)(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


@dataclass
class Users(Columns):
    first_day: np.ndarray
    platform: np.ndarray  # acquisition platform
    channel: np.ndarray  # acquisition channel
    campaign: np.ndarray  # index into CAMPAIGNS, -1 for none
    country: np.ndarray
    signs_up: np.ndarray  # signs up in the first session; only they add to cart and buy
    return_rate: np.ndarray  # daily return rate right after the first visit


@dataclass
class Sessions(Columns):
    user: np.ndarray
    day: np.ndarray
    start_us: np.ndarray
    platform: np.ndarray
    channel: np.ndarray
    campaign: np.ndarray
    first: np.ndarray  # the user's first-ever session
    burst: np.ndarray  # a traffic-burst visitor: one short browsing session


def simulate_users(rng: np.random.Generator, calendar: Calendar, users: int) -> Users:
    """Users arriving over the period with growth and weekly seasonality, numbered by arrival."""
    growth = 1 + (GROWTH - 1) * np.arange(calendar.days) / max(calendar.days - 1, 1)
    weight = growth * np.where(calendar.weekend(), WEEKEND_FACTOR, 1.0)
    first_day = np.sort(rng.choice(calendar.days, size=users, p=weight / weight.sum()))
    channel = rng.choice(len(CHANNELS), size=users, p=CHANNEL_SHARE)
    signs_up = rng.random(users) < SIGNUP_RATE[channel]
    mean_rate = np.where(signs_up, ENGAGED_RETURN_RATE, BROWSER_RETURN_RATE)
    return Users(
        first_day=first_day,
        platform=rng.choice(len(PLATFORMS), size=users, p=PLATFORM_SHARE),
        channel=channel,
        campaign=_campaigns(rng, channel),
        country=rng.choice(len(COUNTRIES), size=users, p=COUNTRY_SHARE),
        signs_up=signs_up,
        # lognormal with the given mean: a few very loyal users, many occasional ones
        return_rate=mean_rate * rng.lognormal(-0.5 * 0.8**2, 0.8, size=users),
    )


def _campaigns(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    campaign = np.full(len(channel), -1, dtype=np.int64)
    for paid_channel, options in CAMPAIGNS_OF_CHANNEL.items():
        rows = np.flatnonzero(channel == paid_channel)
        campaign[rows] = rng.choice(options, size=len(rows))
    return campaign


def simulate_sessions(rng: np.random.Generator, calendar: Calendar, users: Users) -> Sessions:
    """Each user's first session plus repeat visits, at most one a day. The first session has
    the acquisition context; later ones sometimes come from another device (so event-level
    segments differ from acquisition ones) or straight in (organic)."""
    returning_user, return_day = _repeat_visits(rng, calendar, users)
    newcomers = len(users.first_day)
    user = np.concatenate([np.arange(newcomers), returning_user])
    order = np.argsort(user, kind="stable")
    user = user[order]
    day = np.concatenate([users.first_day, return_day])[order]
    first = np.arange(len(order)) < newcomers
    first = first[order]
    n = len(user)
    switch = ~first & (rng.random(n) < PLATFORM_SWITCH_RATE)
    other_platform = (users.platform[user] + rng.integers(1, len(PLATFORMS), size=n)) % 3
    sticky = first | (rng.random(n) < CHANNEL_STICKINESS)
    return Sessions(
        user=user,
        day=day,
        start_us=calendar.start_us(day) + _time_of_day_us(rng, n),
        platform=np.where(switch, other_platform, users.platform[user]),
        channel=np.where(sticky, users.channel[user], ORGANIC),
        campaign=np.where(sticky, users.campaign[user], -1),
        first=first,
        burst=np.zeros(n, dtype=bool),
    )


def _repeat_visits(
    rng: np.random.Generator, calendar: Calendar, users: Users
) -> tuple[np.ndarray, np.ndarray]:
    """(user, day) of return visits: a daily rate that decays over weeks, quieter weekends, at
    most one a day."""
    remaining = calendar.days - 1 - users.first_day
    reach = 1 - np.exp(-remaining / RETURN_DECAY_DAYS)
    weekday_share = 1 - np.mean(calendar.weekend()) * (1 - WEEKEND_FACTOR)
    returns = rng.poisson(users.return_rate * RETURN_DECAY_DAYS * reach / weekday_share)
    who = np.repeat(np.arange(len(users.first_day)), returns)
    # inverse CDF of an exponential truncated to the days left in the period
    age = -RETURN_DECAY_DAYS * np.log1p(-rng.random(len(who)) * reach[who])
    day = users.first_day[who] + 1 + np.floor(age).astype(np.int64)
    kept = ~calendar.weekend()[day] | (rng.random(len(who)) < WEEKEND_FACTOR)
    visit = np.unique(who[kept] * calendar.days + day[kept])
    return visit // calendar.days, visit % calendar.days


def _time_of_day_us(rng: np.random.Generator, n: int) -> np.ndarray:
    """Afternoon and evening peaks (UTC), kept between 00:30 and 22:30."""
    evening = rng.random(n) < 0.4
    hours = np.where(evening, rng.normal(20.0, 2.0, n), rng.normal(14.0, 3.5, n))
    seconds = np.clip(hours, 0.5, 22.5) * 3600
    return (seconds * 1e6).astype(np.int64) + rng.integers(0, 1_000_000, size=n)


def inject_session_anomalies(
    rng: np.random.Generator,
    calendar: Calendar,
    anomalies: list[Anomaly],
    sessions: Sessions,
    users: Users,
) -> tuple[Sessions, Users, list[Incident]]:
    """Anomalies that change who visits: the iOS crash, the paused ads and the traffic burst."""
    incidents = []
    for anomaly in anomalies:
        if anomaly.kind == "crash":
            sessions, incident = _ios_crash(rng, calendar, anomaly, sessions)
        elif anomaly.kind == "paused_channel":
            sessions, incident = _paused_ads(rng, calendar, anomaly, sessions)
        elif anomaly.kind == "spike":
            sessions, users, incident = _traffic_burst(rng, calendar, anomaly, sessions, users)
        else:
            continue
        incidents.append(incident)
    return sessions, users, incidents


def _drop_sessions(sessions: Sessions, dropped: np.ndarray) -> Sessions:
    """Drop sessions; a user whose first session is dropped never shows up at all (a crash on
    first launch, an ad that was never shown), so first sessions stay first."""
    lost_users = np.unique(sessions.user[dropped & sessions.first])
    dropped = dropped | np.isin(sessions.user, lost_users)
    return sessions.take(np.flatnonzero(~dropped))


def _ios_crash(
    rng: np.random.Generator, calendar: Calendar, anomaly: Anomaly, sessions: Sessions
) -> tuple[Sessions, Incident]:
    (day,) = anomaly.days
    hit = (sessions.day == day) & (sessions.platform == IOS)
    dropped = hit & (rng.random(len(hit)) < 0.55)
    share = dropped.sum() / max(hit.sum(), 1)
    incident = Incident(
        anomaly,
        "ios",
        "iOS app {version} crash on launch",
        f"The iOS app {{version}} crashed on launch for users on older iPhones. About "
        f"{share:.0%} of iOS sessions on {calendar.date(day)} never started, so iOS active "
        f"users, sessions and events roughly halved for the day; web and Android were not "
        f"affected. Hotfix {{hotfix}} was approved by the App Store the next morning.",
    )
    return _drop_sessions(sessions, dropped), incident


def _paused_ads(
    rng: np.random.Generator, calendar: Calendar, anomaly: Anomaly, sessions: Sessions
) -> tuple[Sessions, Incident]:
    hit = np.isin(sessions.day, anomaly.days) & (sessions.channel == ADS)
    dropped = hit & (rng.random(len(hit)) < 0.96)
    first, second = (calendar.date(day) for day in anomaly.days)
    incident = Incident(
        anomaly,
        None,
        "All paid ad campaigns paused (billing hold)",
        f"A billing hold on the ad account paused every paid campaign (spring_sale, "
        f"brand_search, retargeting) on {first} and {second}. Traffic from channel=ads "
        f"(utm_source=ads) almost stopped: ads new users, active users, sessions and the "
        f"purchases they bring fell close to zero for both days. Campaigns resumed on "
        f"{second + dt.timedelta(days=1)} after the invoice was paid.",
    )
    return _drop_sessions(sessions, dropped), incident


def _traffic_burst(
    rng: np.random.Generator,
    calendar: Calendar,
    anomaly: Anomaly,
    sessions: Sessions,
    users: Users,
) -> tuple[Sessions, Users, Incident]:
    """A viral post: 1.8× the day's usual visitors arrive as new referral users, mostly on the
    web, browse once and almost never sign up."""
    (day,) = anomaly.days
    visitors = int(round(1.8 * np.sum(sessions.day == day))) or 5
    first_user = len(users.first_day)
    channel = np.full(visitors, REFERRAL)
    platform = rng.choice(len(PLATFORMS), size=visitors, p=[0.7, 0.15, 0.15])
    burst_users = Users(
        first_day=np.full(visitors, day),
        platform=platform,
        channel=channel,
        campaign=np.full(visitors, -1),
        country=rng.choice(len(COUNTRIES), size=visitors, p=COUNTRY_SHARE),
        signs_up=rng.random(visitors) < 0.02,
        return_rate=np.zeros(visitors),
    )
    burst_sessions = Sessions(
        user=np.arange(first_user, first_user + visitors),
        day=np.full(visitors, day),
        start_us=calendar.start_us(day) + _time_of_day_us(rng, visitors),
        platform=platform,
        channel=channel,
        campaign=np.full(visitors, -1),
        first=np.ones(visitors, bool),
        burst=np.ones(visitors, bool),
    )
    incident = Incident(
        anomaly,
        None,
        "Featured on a tech news site: traffic burst",
        f"A post about the shop went viral on a tech news site on {calendar.date(day)}. About "
        f"{visitors:,} extra visitors (channel=referral, about 70% on the web) arrived within "
        f"the day: active users, new users, sessions and events were about three times a "
        f"normal day, while almost none of them signed up or bought, so the conversion rate "
        f"dropped. Traffic was back to normal the next day.",
    )
    return sessions.append(burst_sessions), users.append(burst_users), incident


# --- Events -------------------------------------------------------------------------------------


def simulate_events(
    rng: np.random.Generator, calendar: Calendar, sessions: Sessions, users: Users
) -> pl.DataFrame:
    """Each session's events in funnel order, a few seconds to two minutes apart."""
    counts = _slot_counts(rng, sessions, users)
    per_session = counts.sum(axis=1)
    session = np.repeat(np.arange(len(per_session)), per_session)
    code = np.repeat(np.tile(SESSION_SLOTS, len(per_session)), counts.ravel())
    n = len(code)

    gap = EVENT_GAP_MIN_S + rng.exponential(EVENT_GAP_MEAN_S - EVENT_GAP_MIN_S, n)
    gap_us = (np.minimum(gap, EVENT_GAP_MAX_S) * 1e6).astype(np.int64)
    session_first_row = np.cumsum(per_session) - per_session
    gap_us[session_first_row] = 0
    elapsed = np.cumsum(gap_us)
    ts_us = sessions.start_us[session] + elapsed - elapsed[session_first_row][session]

    purchase = code == PURCHASE
    revenue = np.full(n, np.nan)
    revenue[purchase] = np.round(
        rng.lognormal(np.log(REVENUE_MEDIAN), REVENUE_SIGMA, int(purchase.sum())), 2
    )
    who = sessions.user[session]
    return pl.DataFrame(
        {
            "user": who,
            "session": session,
            "code": code,
            "ts_us": ts_us,
            "day": sessions.day[session],
            "platform": sessions.platform[session],
            "channel": sessions.channel[session],
            "campaign": sessions.campaign[session],
            "country": users.country[who],
            "revenue": revenue,
            "page": _property_codes(rng, code == PAGE_VIEW, 0, len(PAGES)),
            "item": _property_codes(
                rng, np.isin(code, [VIEW_ITEM, ADD_TO_CART, PURCHASE]), 1, ITEMS
            ),
            "query": _property_codes(rng, code == SEARCH, 0, len(QUERIES)),
        }
    ).with_columns(pl.col("revenue").fill_nan(None))


def _property_codes(
    rng: np.random.Generator, applies: np.ndarray, low: int, high: int
) -> np.ndarray:
    """A random code in [low, high) where the property applies to the event, else -1."""
    codes = np.full(len(applies), -1, dtype=np.int64)
    codes[applies] = rng.integers(low, high, size=int(applies.sum()))
    return codes


def _slot_counts(rng: np.random.Generator, sessions: Sessions, users: Users) -> np.ndarray:
    """How many events of each SESSION_SLOTS entry each session has."""
    n = len(sessions.user)
    burst = sessions.burst
    signs_up = users.signs_up[sessions.user]
    counts = np.zeros((n, len(SESSION_SLOTS)), dtype=np.int64)
    counts[:, 0] = 1 + np.minimum(rng.poisson(np.where(burst, 2.0, 1.5)), 6)
    counts[:, 1] = np.minimum(rng.poisson(np.where(burst, 0.1, 0.8)), 4)
    counts[:, 2] = np.minimum(rng.poisson(np.where(burst, 0.8, 2.0)), 6)
    counts[:, 3] = sessions.first & signs_up
    counts[:, 4] = np.minimum(rng.poisson(np.where(burst, 0.3, 0.8)), 4)
    cart_rate = np.where(sessions.first, CART_RATE_FIRST, CART_RATE_RETURN) * signs_up
    cart = rng.random(n) < cart_rate
    counts[:, 5] = cart
    counts[:, 6] = cart & (rng.random(n) < CHECKOUT_RATE[sessions.platform])
    counts[:, 2] = np.maximum(counts[:, 2], cart)  # one looks at an item before carting it
    return counts


def inject_event_anomalies(
    rng: np.random.Generator,
    anomalies: list[Anomaly],
    events: pl.DataFrame,
    incidents: list[Incident],
) -> tuple[pl.DataFrame, list[Incident]]:
    """Anomalies that change what visitors do: the Android checkout outage and the whales."""
    by_anomaly = {incident.anomaly: incident for incident in incidents}
    for anomaly in anomalies:
        if anomaly.kind == "outage":
            events, incident = _android_checkout_outage(rng, anomaly, events)
        elif anomaly.kind == "revenue_spike":
            events, incident = _whale_orders(rng, anomalies, anomaly, events)
        else:
            continue
        by_anomaly[anomaly] = incident
    return events, [by_anomaly[a] for a in anomalies if a in by_anomaly]


def _android_checkout_outage(
    rng: np.random.Generator, anomaly: Anomaly, events: pl.DataFrame
) -> tuple[pl.DataFrame, Incident]:
    """On Android, checkout fails: the purchase becomes a checkout_error without revenue."""
    (day,) = anomaly.days
    code = events["code"].to_numpy().copy()
    hit = (code == PURCHASE) & (events["platform"].to_numpy() == ANDROID)
    hit &= (events["day"].to_numpy() == day) & (rng.random(len(code)) < 0.97)
    code[hit] = CHECKOUT_ERROR
    events = events.with_columns(
        code=pl.Series(code),
        revenue=pl.when(pl.Series(hit)).then(None).otherwise(pl.col("revenue")),
    )
    incident = Incident(
        anomaly,
        "android",
        "Android app {version} checkout crash",
        "Android app {version} shipped with a payment SDK regression: tapping Pay crashed the "
        f"checkout screen, so {hit.sum():,} Android purchases failed (logged as checkout_error) "
        "and Android purchasers and revenue fell to almost zero for most of the day, with the "
        "Android conversion rate near zero. Web and iOS checkout worked normally. Hotfix "
        "{hotfix} was rolled out at 23:10 UTC.",
    )
    return events, incident


def _whale_orders(
    rng: np.random.Generator, anomalies: list[Anomaly], anomaly: Anomaly, events: pl.DataFrame
) -> tuple[pl.DataFrame, Incident]:
    """A few bulk orders (mostly on the web) that together bring six normal days of revenue."""
    (day,) = anomaly.days
    unusual = [d for a in anomalies for d in a.days]
    daily = (
        events.group_by("day").agg(pl.col("revenue").sum()).filter(~pl.col("day").is_in(unusual))
    )
    extra = 6 * float(daily["revenue"].median() or 0.0)
    purchases = events.with_row_index("row").filter(
        (pl.col("day") == day) & (pl.col("code") == PURCHASE)
    )
    # prefer web orders: corporate buyers order from a desktop
    purchases = purchases.with_columns(rank=pl.Series(rng.random(purchases.height))).sort(
        pl.col("platform") != WEB, "rank"
    )
    whales = purchases.head(3)
    amounts = np.round(extra * rng.dirichlet(np.full(max(whales.height, 1), 4.0)), 2)
    boost = np.zeros(events.height)
    boost[whales["row"].to_numpy()] = amounts[: whales.height]
    events = events.with_columns(revenue=(pl.col("revenue") + pl.Series(boost)).round(2))
    total = float(boost.sum())
    platforms = ", ".join(PLATFORMS[p] for p in whales["platform"])
    incident = Incident(
        anomaly,
        None,
        "Bulk orders from corporate customers",
        f"{whales.height} corporate customers placed bulk orders (team gift cards and office "
        f"equipment) worth ${total:,.2f} in total, ordered on: {platforms}. Daily revenue was "
        "several times a normal day although the number of purchasers was ordinary. Not an "
        "error: finance confirmed the payments.",
    )
    return events, incident


# --- Daily metrics and honest labels ------------------------------------------------------------


def daily_metrics(
    events: pl.DataFrame, sessions: Sessions, days: int
) -> dict[tuple[str, str], np.ndarray]:
    """CONTRACT §3 daily_metrics of the simulated clean events, as {(dimension, segment):
    array[days, len(METRICS)]}. A user has at most one session a day and a session has one
    platform, one channel and at most one purchase, so per day and segment active users =
    sessions and purchasers = sessions with a purchase."""
    n = len(sessions.user)
    session = events["session"].to_numpy()
    is_purchase = (events["code"].to_numpy() == PURCHASE).astype(float)
    per_session = {
        "events": np.bincount(session, minlength=n).astype(float),
        "purchasers": np.bincount(session, weights=is_purchase, minlength=n),
        "revenue": np.bincount(
            session, weights=events["revenue"].fill_null(0.0).to_numpy(), minlength=n
        ),
        "new_users": sessions.first.astype(float),
        "sessions": np.ones(n),
    }
    table = {}
    for dimension, names in (("all", ("all",)), ("platform", PLATFORMS), ("channel", CHANNELS)):
        segment = (
            np.zeros(n, dtype=np.int64) if dimension == "all" else getattr(sessions, dimension)
        )
        for code, name in enumerate(names):
            mine = segment == code
            grid = np.zeros((days, len(METRICS)))
            for metric, weights in per_session.items():
                grid[:, METRICS.index(metric)] = np.bincount(
                    sessions.day[mine], weights=weights[mine], minlength=days
                )
            active = grid[:, METRICS.index("active_users")] = grid[:, METRICS.index("sessions")]
            grid[:, METRICS.index("conversion_rate")] = np.divide(
                grid[:, METRICS.index("purchasers")], active, out=np.zeros(days), where=active > 0
            )
            table[(dimension, name)] = grid
    return table


def _candidates(kind: str) -> list[tuple[str, str, str]]:
    """The (dimension, segment, metric) an anomaly can plausibly move; labels keep only those
    that moved strongly."""
    if kind == "outage":
        scope = [("platform", "android"), ("all", "all")]
        return [(d, s, m) for d, s in scope for m in ("purchasers", "revenue", "conversion_rate")]
    if kind == "crash":
        return [("platform", "ios", m) for m in METRICS] + [
            ("all", "all", m) for m in ACTIVITY_METRICS
        ]
    if kind == "paused_channel":
        return [("channel", "ads", m) for m in METRICS] + [
            ("all", "all", m) for m in ACTIVITY_METRICS
        ]
    if kind == "spike":
        scope = [*(s for s in SEGMENTS if s[0] != "channel"), ("channel", "referral")]
        return [(d, s, m) for d, s in scope for m in (*ACTIVITY_METRICS, "conversion_rate")]
    return [(d, s, "revenue") for d, s in SEGMENTS]


def honest_labels(
    calendar: Calendar, metrics: dict[tuple[str, str], np.ndarray], anomalies: list[Anomaly]
) -> list[dict[str, str]]:
    """One label per (date, dimension, segment, metric) an injected anomaly really moved: far
    from the trend of the same weekday in the surrounding weeks, in noise units and relatively."""
    unusual = {d for a in anomalies for d in a.days}
    labels = []
    for anomaly in anomalies:
        for day in anomaly.days:
            weeks = [
                k
                for k in (-3, -2, -1, 1, 2, 3)
                if 0 <= day + 7 * k < calendar.days and day + 7 * k not in unusual
            ]
            if len(weeks) < 2:
                continue
            for dimension, segment, metric in _candidates(anomaly.kind):
                grid = metrics[(dimension, segment)]
                if _moved_strongly(grid, day, weeks, metric):
                    labels.append(
                        {
                            "date": calendar.date(day).isoformat(),
                            "dimension": dimension,
                            "segment": segment,
                            "metric": metric,
                            "kind": anomaly.kind,
                        }
                    )
    return sorted(labels, key=lambda r: (r["date"], r["dimension"], r["segment"], r["metric"]))


def _expected(history: np.ndarray, weeks: np.ndarray) -> tuple[float, float]:
    """Expected value on week 0 and the spread around it, from the same weekday in nearby
    weeks; a straight line through them follows the product's growth."""
    if len(weeks) < 3:
        return float(np.mean(history)), float(np.std(history))
    slope, intercept = np.polyfit(weeks, history, 1)
    residuals = history - (slope * weeks + intercept)
    return float(intercept), 1.4826 * float(np.median(np.abs(residuals)))


def _moved_strongly(grid: np.ndarray, day: int, weeks: list[int], metric: str) -> bool:
    """Relatively large, beyond sampling noise (Poisson for counts, compound Poisson for
    revenue, binomial for rates), and either far from the weekday trend or well outside every
    nearby same-weekday value (a spread estimated from a handful of weeks is itself noisy)."""
    column = METRICS.index(metric)
    usual = [day + 7 * k for k in weeks]
    value, history = grid[day, column], grid[usual, column]
    expected, spread = _expected(history, np.array(weeks, dtype=float))
    change = abs(value - expected)
    if metric == "conversion_rate":
        active = grid[:, METRICS.index("active_users")]
        typical_active, _ = _expected(active[usual], np.array(weeks, dtype=float))
        if min(active[day], typical_active) < 20:
            return False  # a rate over a handful of users is noise
        floor = np.sqrt(max(expected * (1 - expected), 1e-4) / active[day])
        relative = 0.4
    elif metric == "revenue":
        # compound Poisson: a count of orders, each of a lognormal amount
        purchasers = grid[usual, METRICS.index("purchasers")]
        orders, _ = _expected(purchasers, np.array(weeks, dtype=float))
        order_cv2 = np.exp(REVENUE_SIGMA**2) - 1
        floor = max(expected, 1.0) * np.sqrt((1 + order_cv2) / max(orders, 1.0))
        relative = 0.6
    else:
        floor, relative = np.sqrt(max(expected, 1.0)), 0.4
    outside = value < 0.7 * history.min() or value > 1.5 * history.max()
    return (
        change >= relative * expected and change >= 3 * floor and (change >= 3 * spread or outside)
    )


# --- Delivery: arrival days, copies, bad records, file styles -----------------------------------


@dataclass(frozen=True)
class FileStyle:
    """How one SDK or export writes its files: format, field aliases and time form."""

    name: str
    ext: str
    user_key: str
    event_key: str
    time_key: str
    id_key: str | None
    time_form: str  # iso_z | iso_offset | naive | epoch_s | epoch_ms
    platform_key: str = "platform"
    channel_key: str = "channel"
    campaign_key: str = "campaign"
    revenue_key: str = "revenue"
    typed: bool = False  # Parquet with numeric time and revenue columns

    @property
    def json_lines(self) -> bool:
        return self.ext.removesuffix(".gz") in (".jsonl", ".ndjson", ".json")

    def accepts(self, defect: str) -> bool:
        """Whether a record with this defect can be written in this style at all."""
        if defect in ("malformed_record", "invalid_type", "oversized_record"):
            return self.json_lines
        if defect in ("invalid_timestamp", "invalid_revenue"):
            return not self.typed
        return True


# Each consecutive block of four (one arrival day's files) holds a JSON-lines style, so every
# kind of bad record has somewhere to go every day. Together they use every alias of CONTRACT §2.
STYLES = (
    FileStyle("web-sdk", ".jsonl", "user_id", "event", "timestamp", "event_id", "iso_z"),
    FileStyle(
        "backend", ".csv", "user_id", "event_name", "event_time", "uuid", "iso_offset",
        campaign_key="utm_campaign",
    ),
    FileStyle("warehouse", ".parquet", "user_id", "event", "ts", "event_id", "epoch_ms", typed=True),
    FileStyle(
        "mixpanel", ".json", "distinct_id", "event", "time", "$insert_id", "epoch_s",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
        revenue_key="$revenue",
    ),
    FileStyle(
        "segment", ".ndjson", "userId", "event", "originalTimestamp", "messageId", "iso_offset",
        channel_key="utm_source", campaign_key="utm_campaign",
    ),
    FileStyle(
        "crm-export", ".csv.gz", "distinct_id", "event_type", "timestamp", None, "iso_z",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
        revenue_key="$revenue",
    ),
    FileStyle(
        "amplitude", ".jsonl.gz", "user_id", "event_type", "time", "insert_id", "epoch_ms",
        revenue_key="$revenue",
    ),
    FileStyle(
        "lake", ".parquet", "userId", "name", "event_time", "insert_id", "naive",
        platform_key="$os", channel_key="utm_source", campaign_key="utm_campaign",
    ),
    FileStyle(
        "rudderstack", ".ndjson.gz", "anonymousId", "name", "ts", "messageId", "naive",
        campaign_key="utm_campaign",
    ),
    FileStyle("kiosk", ".csv", "anonymousId", "event", "time", None, "naive"),
    FileStyle(
        "pos", ".jsonl", "anonymous_id", "event_name", "time", None, "epoch_ms",
        platform_key="$os",
    ),
    FileStyle("legacy", ".json.gz", "distinct_id", "name", "event_time", None, "iso_z"),
)  # fmt: skip
STYLES_PER_DAY = 4
BAD_KINDS = (
    "malformed_record",
    "missing_user_id",
    "missing_event",
    "missing_timestamp",
    "invalid_timestamp",
    "future_timestamp",
    "invalid_revenue",
    "invalid_type",
    "oversized_record",
)
RECORD_COLUMNS = (
    "id_index",  # row of the record's event id in the id table: copies share their original's
    "user",
    "code",
    "ts_us",
    "platform",
    "channel",
    "campaign",
    "country",
    "revenue",
    "page",
    "item",
    "query",
    "arrival",
    "style",
    "order_us",
    "defect",
    "variant",
)


@dataclass(frozen=True)
class Delivery:
    bad_records: dict[str, int]
    duplicates: int
    late_records: int


def day_styles(days: int) -> np.ndarray:
    """The styles (indexes into STYLES) that write a file on each arrival day: [days, 4]. The
    rotation repeats every len(STYLES) / STYLES_PER_DAY = 3 days."""
    return (np.arange(days)[:, None] * STYLES_PER_DAY + np.arange(STYLES_PER_DAY)) % len(STYLES)


def deliver(
    rng: np.random.Generator, calendar: Calendar, events: pl.DataFrame
) -> tuple[pl.DataFrame, Delivery]:
    """Every record as it lands: clean events (some late), re-sent copies and bad records, each
    with its arrival day, file style and position in the file (order_us), sorted by file."""
    styles = day_styles(calendar.days)
    clean = _arrivals(rng, calendar, events, styles)
    copies = _resent_copies(rng, calendar, clean)
    bad, bad_counts = _bad_records(rng, calendar, clean, styles)
    records = pl.concat(
        [frame.select(RECORD_COLUMNS) for frame in (clean, copies, bad)],
        how="vertical_relaxed",
        rechunk=True,  # a gather over many chunks is several times slower
    )
    order = np.lexsort([records[c].to_numpy() for c in ("order_us", "arrival", "style")])
    records = records[order]
    # ids are made last, for the sorted rows only: strings are the expensive part to move
    id_bytes = np.frombuffer(rng.bytes(16 * (clean.height + bad.height)), dtype=np.uint8)
    event_id = _uuids(id_bytes.reshape(-1, 16)[records["id_index"].to_numpy()])
    records = records.with_columns(event_id=event_id)
    late = int((clean["arrival"] > clean["day"]).sum())
    return records, Delivery(bad_counts, copies.height, late)


def _arrivals(
    rng: np.random.Generator, calendar: Calendar, events: pl.DataFrame, styles: np.ndarray
) -> pl.DataFrame:
    """Arrival day (late sessions land 1–2 days later, never after the last day) and file."""
    n = events.height
    session = events["session"].to_numpy()
    sessions = int(session.max()) + 1 if n else 0
    session_platform = np.zeros(sessions, dtype=np.int64)
    session_platform[session] = events["platform"].to_numpy()
    late_session = rng.random(sessions) < LATE_RATE[session_platform]
    delay = np.where(late_session, 1 + (rng.random(sessions) < 0.3), 0)[session]
    day = events["day"].to_numpy()
    arrival = np.minimum(day + delay, calendar.days - 1)
    # late uploads sit among that day's records, not at its start
    uploaded_us = calendar.start_us(arrival) + rng.integers(0, DAY_US, size=n)
    return events.with_columns(
        id_index=pl.Series(np.arange(n)),
        arrival=pl.Series(arrival),
        style=pl.Series(styles[arrival, rng.integers(0, STYLES_PER_DAY, size=n)]),
        order_us=pl.Series(np.where(arrival > day, uploaded_us, events["ts_us"].to_numpy())),
        defect=pl.lit(None, dtype=pl.String),
        variant=pl.Series(rng.integers(0, VARIANTS, size=n)),
    )


def _resent_copies(
    rng: np.random.Generator, calendar: Calendar, clean: pl.DataFrame
) -> pl.DataFrame:
    """~1% of records sent again by the same SDK: later in the same file, or in that SDK's next
    file three days later (its next turn in the rotation). Some SDKs re-stamp the time of a
    retry but keep its event id."""
    copies = clean.filter(pl.Series(rng.random(clean.height) < DUPLICATE_RATE))
    n = copies.height
    first_arrival = copies["arrival"].to_numpy()
    next_file = first_arrival + len(STYLES) // STYLES_PER_DAY
    later = (rng.random(n) < 0.4) & (next_file < calendar.days)
    arrival = np.where(later, next_file, first_arrival)
    order_us = np.where(
        later,
        calendar.start_us(arrival) + rng.integers(0, DAY_US, size=n),
        copies["order_us"].to_numpy() + rng.integers(1_000_000, 3_600 * 1_000_000, size=n),
    )
    has_id = np.array([s.id_key is not None for s in STYLES])[copies["style"].to_numpy()]
    restamp = has_id & (rng.random(n) < RESTAMPED_COPY_RATE)
    shift_us = np.where(restamp, rng.integers(1, 6, size=n) * 1_000_000, 0)
    return copies.with_columns(
        arrival=pl.Series(arrival),
        order_us=pl.Series(order_us),
        ts_us=pl.col("ts_us") + pl.Series(shift_us),
    )


def _bad_records(
    rng: np.random.Generator, calendar: Calendar, clean: pl.DataFrame, styles: np.ndarray
) -> tuple[pl.DataFrame, dict[str, int]]:
    """~0.2% bad records, at least a few of every kind, each in a file style that can hold it;
    their content is borrowed from real events, with a fresh id."""
    per_kind = max(MIN_BAD_PER_KIND, round(BAD_RECORD_RATE * clean.height / len(BAD_KINDS)))
    counts = {kind: per_kind for kind in BAD_KINDS}
    counts["oversized_record"] = 1 if clean.height < 100_000 else 2
    files = [(day, int(style)) for day in range(calendar.days) for style in styles[day]]
    frames = []
    next_id = clean.height
    for kind, count in counts.items():
        homes = [f for f in files if STYLES[f[1]].accepts(kind)]
        home = np.array(homes)[rng.integers(0, len(homes), size=count)]
        in_day_us = calendar.start_us(home[:, 0]) + rng.integers(0, DAY_US, size=count)
        future_us = in_day_us + rng.integers(3, 8, size=count) * DAY_US
        donor = clean[rng.integers(0, clean.height, size=count)]
        frame = donor.with_columns(
            id_index=pl.Series(np.arange(next_id, next_id + count)),
            arrival=pl.Series(home[:, 0]),
            style=pl.Series(home[:, 1]),
            ts_us=pl.Series(future_us if kind == "future_timestamp" else in_day_us),
            order_us=pl.Series(in_day_us),
            defect=pl.lit(kind),
            # consecutive variants: every flavour of the defect shows up (see VARIANTS)
            variant=pl.Series((rng.integers(0, VARIANTS) + np.arange(count)) % VARIANTS),
        )
        if kind == "invalid_revenue":
            frame = frame.with_columns(code=pl.lit(PURCHASE, dtype=frame["code"].dtype))
        frames.append(frame)
        next_id += count
    return pl.concat(frames, how="vertical_relaxed"), counts


def _uuids(random_bytes: np.ndarray) -> pl.Series:
    """Version-4 UUID strings from 16 random bytes a row, built as one buffer (no Python loop)."""
    n = len(random_bytes)
    random_bytes = random_bytes.copy()
    random_bytes[:, 6] = 0x40 | (random_bytes[:, 6] & 0x0F)  # version 4
    random_bytes[:, 8] = 0x80 | (random_bytes[:, 8] & 0x3F)  # RFC 4122 variant
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    pair = np.arange(256)
    # byte → its two hex characters, as one little-endian uint16
    table = (hex_digits[pair >> 4] | (hex_digits[pair & 15].astype(np.uint16) << 8)).astype(
        np.uint16
    )
    hex_text = table[random_bytes].view(np.uint8)  # [n, 32]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    # 8-4-4-4-12 hex digits: group i moves right by the i dashes before it
    for dashes, (start, stop) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        text[:, start + dashes : stop + dashes] = hex_text[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    return pl.Series("event_id", pl.from_arrow(strings), dtype=pl.String)


# --- Writing files ------------------------------------------------------------------------------


def write_landing(out: Path, calendar: Calendar, records: pl.DataFrame) -> int:
    """Write every (arrival day, style) file; `records` are sorted by style, arrival day and
    position. Returns the number of files."""
    landing = out / "landing" / "events"
    _remove_previous_demo_files(landing)
    records = _with_text_columns(records)
    style = records["style"].to_numpy()
    starts = np.flatnonzero(np.diff(style, prepend=-1))
    files = 0
    for start, stop in zip(starts, [*starts[1:], len(style)], strict=True):
        rows = records.slice(start, stop - start)
        files += _write_style_files(landing, calendar, STYLES[style[start]], rows)
    return files


def _write_style_files(
    landing: Path, calendar: Calendar, style: FileStyle, rows: pl.DataFrame
) -> int:
    """One file per arrival day of this style's rows (sorted by arrival day)."""
    rendered = _render(style, rows)
    arrival = rows["arrival"].to_numpy()
    starts = np.flatnonzero(np.diff(arrival, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(arrival)], strict=True):
        date = calendar.date(arrival[start])
        folder = landing / f"date={date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{style.name}-{date:%Y%m%d}{style.ext}"
        _write_file(path, style, rendered.slice(start, stop - start))
    return len(starts)


def _remove_previous_demo_files(landing: Path) -> None:
    """Demo files of an earlier run would mix with this one; anything else is left alone."""
    if not landing.exists():
        return
    for folder in landing.glob("date=*"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if any(_is_demo_file(path.name, style) for style in STYLES):
                path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def _is_demo_file(name: str, style: FileStyle) -> bool:
    stamp = name.removeprefix(f"{style.name}-").removesuffix(style.ext)
    return name.startswith(f"{style.name}-") and name.endswith(style.ext) and stamp.isdigit()


def _with_text_columns(records: pl.DataFrame) -> pl.DataFrame:
    """Codes to the strings a file holds, and each record's time precision and UTC offset."""
    return records.with_columns(
        **_time_columns(records["variant"]),
        user_id=_numbered("u", 6, records["user"]),
        event=_decode(records["code"], EVENT_NAMES),
        platform=_decode(records["platform"], PLATFORMS),
        channel=_decode(records["channel"], CHANNELS),
        campaign=_decode(records["campaign"], CAMPAIGNS),
        country=_decode(records["country"], COUNTRIES),
        page=_decode(records["page"], PAGES),
        item_id=_numbered("sku-", 4, records["item"]),
        query=_decode(records["query"], QUERIES),
        revenue_text=pl.col("revenue").round(2).cast(pl.String),
    )


def _time_columns(variant: pl.Series) -> dict[str, pl.Series]:
    """What `_time_text` needs besides ts_us: ISO forms mix 0, 3 and 6 fractional digits (19, 23
    or 26 characters) and several UTC offsets, picked by the record's variant."""
    variant_numbers = variant.to_numpy()
    offset = (variant_numbers // 3) % len(OFFSETS)
    return {
        "iso_length": pl.Series(np.array([19, 23, 26])[variant_numbers % 3]),
        "offset_us": pl.Series(np.array([m for _, m in OFFSETS])[offset] * 60_000_000),
        "offset_text": _decode(pl.Series(offset), tuple(o for o, _ in OFFSETS)),
    }


def _numbered(prefix: str, digits: int, numbers: pl.Series) -> pl.Series:
    """Names like u000042: formatted once per distinct number, then gathered; -1 → null."""
    count = int(numbers.max() or 0) + 1
    names = pl.select(
        pl.format(f"{prefix}{{}}", pl.int_range(0, count).cast(pl.String).str.zfill(digits))
    ).to_series()
    index = numbers.to_numpy()
    return pl.concat([names, pl.Series([None], dtype=pl.String)]).gather(
        np.where(index < 0, count, index)
    )


def _decode(codes: pl.Series, names: tuple[str, ...]) -> pl.Series:
    """Index → name; -1 (none) → null."""
    index = codes.to_numpy()
    return pl.Series([*names, None], dtype=pl.String).gather(np.where(index < 0, len(names), index))


def _pick(options: tuple[str, ...], chooser: pl.Expr | None = None) -> pl.Expr:
    """One of `options` per record, chosen by its variant."""
    choice = (pl.col("variant") if chooser is None else chooser) % len(options)
    expr = pl.when(choice == 0).then(pl.lit(options[0]))
    for index, option in enumerate(options[1:], start=1):
        expr = expr.when(choice == index).then(pl.lit(option))
    return expr


def _time_text(form: str) -> pl.Expr:
    """The time as this style writes it; an offset form writes the local time at that offset,
    i.e. the same instant as the UTC time."""
    ts_us = pl.col("ts_us")
    if form == "epoch_s":
        return (ts_us // 1_000_000).cast(pl.String)
    if form == "epoch_ms":
        return (ts_us // 1_000).cast(pl.String)
    shifted = ts_us + pl.col("offset_us") if form == "iso_offset" else ts_us
    text = pl.from_epoch(shifted, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    text = text.str.slice(0, pl.col("iso_length"))
    if form == "iso_z":
        return pl.concat_str([text, pl.lit("Z")])
    if form == "iso_offset":
        return pl.concat_str([text, pl.col("offset_text")])
    return text


def _render(style: FileStyle, rows: pl.DataFrame) -> pl.DataFrame:
    """The file content of `rows` in this style: a `line` column for JSON lines, else the
    CSV/Parquet columns. Clean records take a fast path; the few bad ones get their defect."""
    if not style.json_lines:
        return rows.select(_table_columns(style))
    lines = rows.select(line=_json_line(style))["line"]
    bad = np.flatnonzero(rows["defect"].is_not_null().to_numpy())
    if len(bad):
        lines = lines.scatter(bad, rows[bad].select(line=_bad_json_line(style))["line"])
    return lines.to_frame("line")


def _string_member(key: str, value: pl.Expr) -> pl.Expr:
    """`"key":"value"`, or null (left out) when the value is null. One flat concatenation:
    nesting them is several times slower."""
    return pl.concat_str([pl.lit(f'"{key}":"'), value, pl.lit('"')])


def _member(key: str, json_value: pl.Expr) -> pl.Expr:
    """`"key":value` for a value that is JSON text already, or null when the value is null."""
    return pl.concat_str([pl.lit(f'"{key}":'), json_value])


def _json_object(members: list[pl.Expr]) -> pl.Expr:
    inner = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.concat_str([pl.lit("{"), inner, pl.lit("}")])


def _json_time(style: FileStyle) -> pl.Expr:
    text = _time_text(style.time_form)
    if style.time_form.startswith("epoch"):
        return text
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def _json_line(style: FileStyle) -> pl.Expr:
    """A clean record as one JSON line in this style's aliases."""
    head = f'{{"{style.id_key}":"' if style.id_key else None
    parts = [pl.lit(head), pl.col("event_id"), pl.lit('",')] if head else [pl.lit("{")]
    parts += [
        pl.lit(f'"{style.user_key}":"'),
        pl.col("user_id"),
        pl.lit(f'","{style.event_key}":"'),
        pl.col("event"),
        pl.lit(f'","{style.time_key}":'),
        _json_time(style),
        pl.lit(',"properties":'),
        _json_properties(style),
        pl.lit("}"),
    ]
    return pl.concat_str(parts)


def _json_properties(style: FileStyle, defects: bool = False) -> pl.Expr:
    """The properties object; with `defects`, invalid revenues and oversized attachments."""
    revenue = _member(style.revenue_key, pl.col("revenue_text"))
    extras = [pl.when(pl.col("event") == "purchase").then(pl.lit('"currency":"USD"'))]
    if defects:
        defect = pl.col("defect")
        bad_revenue = _string_member(style.revenue_key, _pick(BAD_REVENUES))
        revenue = pl.when(defect == "invalid_revenue").then(bad_revenue).otherwise(revenue)
        attachment = pl.lit(f'"attachment":"{OVERSIZED_MARK}"')
        extras.append(pl.when(defect == "oversized_record").then(attachment))
    return _json_object(
        [
            _string_member(style.platform_key, pl.col("platform")),
            _string_member(style.channel_key, pl.col("channel")),
            _string_member(style.campaign_key, pl.col("campaign")),
            _string_member("country", pl.col("country")),
            _string_member("page", pl.col("page")),
            _string_member("item_id", pl.col("item_id")),
            _string_member("query", pl.col("query")),
            revenue,
            *extras,
        ]
    )


def _absent_or_null() -> pl.Expr:
    """A missing field is either left out or written as JSON null."""
    return pl.when(pl.col("variant") % 2 == 0).then(NULL).otherwise(pl.lit("null"))


def _bad_json_line(style: FileStyle) -> pl.Expr:
    """A JSON-lines record with its defect (CONTRACT §2 quarantine reasons)."""
    defect, variant = pl.col("defect"), pl.col("variant")
    wrong_type = defect == "invalid_type"
    quoted_user = pl.concat_str([pl.lit('"'), pl.col("user_id"), pl.lit('"')])
    quoted_event = pl.concat_str([pl.lit('"'), pl.col("event"), pl.lit('"')])
    user = (
        pl.when(defect == "missing_user_id")
        .then(_absent_or_null())
        .when(wrong_type & (variant % 4 == 0))
        .then(pl.concat_str([pl.lit('{"id":'), quoted_user, pl.lit("}")]))
        .otherwise(quoted_user)
    )
    event = (
        pl.when(defect == "missing_event")
        .then(_absent_or_null())
        .when(wrong_type & (variant % 4 == 2))
        .then(pl.concat_str([pl.lit("["), quoted_event, pl.lit("]")]))
        .otherwise(quoted_event)
    )
    timestamp = (
        pl.when(defect == "missing_timestamp")
        .then(_absent_or_null())
        .when(defect == "invalid_timestamp")
        .then(pl.concat_str([pl.lit('"'), _pick(BAD_TIMESTAMPS), pl.lit('"')]))
        .otherwise(_json_time(style))
    )
    properties = (
        pl.when(wrong_type & (variant % 4 == 1))
        .then(pl.lit("[1,2]"))
        .when(wrong_type & (variant % 4 == 3))
        .then(pl.lit('"not an object"'))
        .otherwise(_json_properties(style, defects=True))
    )
    members = [
        _member(style.user_key, user),
        _member(style.event_key, event),
        _member(style.time_key, timestamp),
        _member("properties", properties),
    ]
    if style.id_key:
        members.insert(0, _string_member(style.id_key, pl.col("event_id")))
    line = _json_object(members)
    # a strict prefix of a JSON object never parses: the object is not closed
    truncated = line.str.slice(0, line.str.len_chars() * 3 // 5)
    broken = pl.when(variant % 2 == 0).then(truncated).otherwise(_pick(GARBAGE_LINES, variant // 2))
    return pl.when(defect == "malformed_record").then(broken).otherwise(line)


def _table_columns(style: FileStyle) -> list[pl.Expr]:
    """CSV/Parquet columns: properties as top-level columns, missing values as empty/null."""
    defect = pl.col("defect")
    if style.typed:
        time_value = pl.col("ts_us") // 1_000  # epoch milliseconds, an integer column
        revenue = pl.col("revenue")
    else:
        time_value = pl.when(defect == "invalid_timestamp").then(_pick(BAD_TIMESTAMPS))
        time_value = time_value.otherwise(_time_text(style.time_form))
        revenue = pl.when(defect == "invalid_revenue").then(_pick(BAD_REVENUES))
        revenue = revenue.otherwise(pl.col("revenue_text"))
    columns = {
        style.user_key: pl.when(defect == "missing_user_id").then(NULL).otherwise("user_id"),
        style.event_key: pl.when(defect == "missing_event").then(NULL).otherwise("event"),
        style.time_key: pl.when(defect == "missing_timestamp").then(None).otherwise(time_value),
        style.platform_key: pl.col("platform"),
        style.channel_key: pl.col("channel"),
        style.campaign_key: pl.col("campaign"),
        style.revenue_key: revenue,
        "country": pl.col("country"),
        "page": pl.col("page"),
        "item_id": pl.col("item_id"),
        "query": pl.col("query"),
    }
    if style.id_key:
        columns = {style.id_key: pl.col("event_id"), **columns}
    return [expr.alias(name) for name, expr in columns.items()]


def _write_file(path: Path, style: FileStyle, frame: pl.DataFrame) -> None:
    if style.ext == ".parquet":
        frame.write_parquet(path, compression="zstd")
        return
    if style.json_lines:
        text = frame["line"].str.join("\n").item() + "\n"
        if OVERSIZED_MARK in text:
            text = text.replace(OVERSIZED_MARK, "x" * OVERSIZED_BYTES)
        data = text.encode()
    else:
        buffer = io.BytesIO()
        frame.write_csv(buffer)
        data = buffer.getvalue()
    if style.ext.endswith(".gz"):
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)  # mtime=0: reproducible
    path.write_bytes(data)


def write_labels(path: Path, labels: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(labels, indent=2) + "\n")


# --- Changelog ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """A changelog entry explaining an injected anomaly."""

    anomaly: Anomaly
    platform: str | None  # the app whose release caused it; {version}/{hotfix} get its numbers
    title: str
    body: str


RELEASE_NAMES = {"web": "Web shop", "ios": "iOS app", "android": "Android app"}
FIRST_VERSIONS = {"web": (3, 14), "ios": (4, 6), "android": (5, 2)}
ROUTINE_RELEASES = (
    ("web", "Faster search suggestions with typo tolerance."),
    ("ios", "Apple Pay in checkout and a smaller download."),
    ("android", "Redesigned order history and offline browsing of recently viewed items."),
    ("web", "Saved carts now sync across devices."),
    ("ios", "Wishlist widget for the home screen."),
    ("android", "Google Pay in checkout."),
    ("web", "New help centre with live chat."),
    ("ios", "Accessibility fixes: larger tap targets, VoiceOver labels."),
    ("android", "Dark mode and battery-saving image loading."),
    ("web", "Product pages load 30% faster (image CDN)."),
)
ROUTINE_OUTCOMES = (
    "Rolled out to everyone; metrics stayed within their usual range.",
    "Gradual rollout over two days; no measurable change in traffic or conversion.",
    "No incidents; conversion unchanged within noise.",
)


def write_changelog(
    path: Path, rng: np.random.Generator, calendar: Calendar, incidents: list[Incident]
) -> None:
    """`docs/changelog.md`: routine releases and the incidents behind the injected anomalies,
    newest first, under dated headings."""
    entries = _routine_entries(rng, calendar, incidents) + [
        (incident.anomaly.days[0], incident.platform, incident) for incident in incidents
    ]
    versions = {platform: list(start) for platform, start in FIRST_VERSIONS.items()}
    sections = []
    for day, platform, content in sorted(entries, key=lambda e: e[0]):
        version = hotfix = ""
        if platform:
            versions[platform][1] += 1
            major, minor = versions[platform]
            version, hotfix = f"{major}.{minor}.0", f"{major}.{minor}.1"
        sections.append(_changelog_section(calendar, day, platform, content, version, hotfix))
    text = "# Product changelog\n\nReleases and incidents of the demo shop, newest first. "
    text += "Dates are UTC.\n\n" + "\n".join(reversed(sections))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _routine_entries(
    rng: np.random.Generator, calendar: Calendar, incidents: list[Incident]
) -> list[tuple[int, str | None, str]]:
    """A routine release every 6–10 days, never on an incident day."""
    busy = {day for incident in incidents for day in incident.anomaly.days}
    entries = []
    day, index = int(rng.integers(1, 5)), 0
    while day < calendar.days:
        if day not in busy:
            platform, note = ROUTINE_RELEASES[index % len(ROUTINE_RELEASES)]
            outcome = ROUTINE_OUTCOMES[int(rng.integers(0, len(ROUTINE_OUTCOMES)))]
            entries.append((day, platform, f"{note} {outcome}"))
            index += 1
        day += int(rng.integers(6, 11))
    return entries


def _changelog_section(
    calendar: Calendar,
    day: int,
    platform: str | None,
    content: Incident | str,
    version: str,
    hotfix: str,
) -> str:
    if isinstance(content, str):
        heading = f"{RELEASE_NAMES[platform or 'web']} {version} release"
        return f"## {calendar.date(day)} — {heading}\n\n{content}\n"
    dates = [calendar.date(d) for d in content.anomaly.days]
    when = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else f"{dates[0]}"
    title = content.title.replace("{version}", version)
    body = content.body.replace("{version}", version).replace("{hotfix}", hotfix)
    if content.anomaly.kind in ("spike", "revenue_spike"):
        return f"## {when} — {title}\n\n{body}\n"
    return f"## {when} — Incident: {title}\n\n{body}\n"
