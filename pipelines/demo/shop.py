"""What the demo shop looks like: its platforms, channels, catalogue and events, how its
visitors behave, how their SDKs deliver (late, re-sent, broken) and which anomalies are injected.

Every step of the simulation reads its numbers from here, so the shop is tuned in one place.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

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
ACTIVITY_METRICS = ("active_users", "new_users", "sessions", "events")
SEGMENTS = (
    ("all", "all"),
    *(("platform", p) for p in PLATFORMS),
    *(("channel", c) for c in CHANNELS),
)

DAY_US = 86_400 * 1_000_000
EPOCH = dt.date(1970, 1, 1)
