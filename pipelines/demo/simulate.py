"""The simulation itself: users arriving, their sessions and each session's events, as numpy
columns; and the injected anomalies, which change who visits (sessions) or what visitors do
(events) and each come with the changelog incident that explains them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Self

import numpy as np
import polars as pl

from pipelines.demo.changelog import Incident
from pipelines.demo.plan import Anomaly, Calendar
from pipelines.demo.shop import (
    ADD_TO_CART,
    ADS,
    ANDROID,
    BROWSER_RETURN_RATE,
    CAMPAIGNS_OF_CHANNEL,
    CART_RATE_FIRST,
    CART_RATE_RETURN,
    CHANNEL_SHARE,
    CHANNEL_STICKINESS,
    CHANNELS,
    CHECKOUT_ERROR,
    CHECKOUT_RATE,
    COUNTRIES,
    COUNTRY_SHARE,
    ENGAGED_RETURN_RATE,
    EVENT_GAP_MAX_S,
    EVENT_GAP_MEAN_S,
    EVENT_GAP_MIN_S,
    GROWTH,
    IOS,
    ITEMS,
    ORGANIC,
    PAGE_VIEW,
    PAGES,
    PLATFORM_SHARE,
    PLATFORM_SWITCH_RATE,
    PLATFORMS,
    PURCHASE,
    QUERIES,
    REFERRAL,
    RETURN_DECAY_DAYS,
    REVENUE_MEDIAN,
    REVENUE_SIGMA,
    SEARCH,
    SESSION_SLOTS,
    SIGNUP_RATE,
    VIEW_ITEM,
    WEB,
    WEEKEND_FACTOR,
)

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
