"""Daily metrics of the simulated events and the honest labels derived from them.

`daily_metrics` is a second, numpy implementation of CONTRACT §3 daily_metrics, separate from
sql/marts/daily_metrics.sql on purpose: `generate` writes the labels together with the files,
before any ingest or warehouse exists, and the labels are the ground truth the anomaly stage is
scored against (assets/anomalies), so they come from the simulated clean events themselves, not
from the SQL under test. Working on the simulation's arrays is also simpler than the SQL: a user
has at most one session a day, with one platform and one channel, so per day and segment active
users are sessions (see `daily_metrics`). benchmarks/anomaly_bench.py uses it to get the
warehouse's numbers without writing files. `honest_labels` then keeps only the (day, segment,
metric) an injected anomaly really moved beyond noise.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.demo.plan import Anomaly, Calendar
from pipelines.demo.shop import (
    ACTIVITY_METRICS,
    CHANNELS,
    PLATFORMS,
    PURCHASE,
    REVENUE_SIGMA,
    SEGMENTS,
)
from pipelines.demo.simulate import Sessions
from pipelines.settings import METRIC_NAMES


def daily_metrics(
    events: pl.DataFrame, sessions: Sessions, days: int
) -> dict[tuple[str, str], np.ndarray]:
    """CONTRACT §3 daily_metrics of the simulated clean events, as {(dimension, segment):
    array[days, len(METRIC_NAMES)]}. A user has at most one session a day and a session has one
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
    column = METRIC_NAMES.index  # a metric's column in the grid
    table = {}
    for dimension, names in (("all", ("all",)), ("platform", PLATFORMS), ("channel", CHANNELS)):
        segment = (
            np.zeros(n, dtype=np.int64) if dimension == "all" else getattr(sessions, dimension)
        )
        for code, name in enumerate(names):
            mine = segment == code
            grid = np.zeros((days, len(METRIC_NAMES)))
            for metric, weights in per_session.items():
                grid[:, column(metric)] = np.bincount(
                    sessions.day[mine], weights=weights[mine], minlength=days
                )
            active = grid[:, column("active_users")] = grid[:, column("sessions")]
            grid[:, column("conversion_rate")] = np.divide(
                grid[:, column("purchasers")], active, out=np.zeros(days), where=active > 0
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
        return [("platform", "ios", m) for m in METRIC_NAMES] + [
            ("all", "all", m) for m in ACTIVITY_METRICS
        ]
    if kind == "paused_channel":
        return [("channel", "ads", m) for m in METRIC_NAMES] + [
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
            weeks = _clean_weeks(day, calendar.days, unusual)
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


def _clean_weeks(day: int, days: int, unusual: set[int]) -> list[int]:
    """The same weekdays within three weeks of `day` (k weeks away) that no anomaly touched;
    when fewer than two are, the nearest clean ones further out make two: an anomaly on the
    last days whose earlier same weekdays are anomalies too is still labelled."""

    def clean(k: int) -> bool:
        return 0 <= day + 7 * k < days and day + 7 * k not in unusual

    weeks = [k for k in (-3, -2, -1, 1, 2, 3) if clean(k)]
    further = (k for distance in range(4, days // 7 + 1) for k in (-distance, distance))
    while len(weeks) < 2 and (k := next(further, None)) is not None:
        if clean(k):
            weeks.append(k)
    return sorted(weeks)


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
    column = METRIC_NAMES.index(metric)
    usual = [day + 7 * k for k in weeks]
    value, history = grid[day, column], grid[usual, column]
    expected, spread = _expected(history, np.array(weeks, dtype=float))
    change = abs(value - expected)
    if metric == "conversion_rate":
        active = grid[:, METRIC_NAMES.index("active_users")]
        typical_active, _ = _expected(active[usual], np.array(weeks, dtype=float))
        if min(active[day], typical_active) < 20:
            return False  # a rate over a handful of users is noise
        floor = np.sqrt(max(expected * (1 - expected), 1e-4) / active[day])
        relative = 0.4
    elif metric == "revenue":
        # compound Poisson: a count of orders, each of a lognormal amount
        purchasers = grid[usual, METRIC_NAMES.index("purchasers")]
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
