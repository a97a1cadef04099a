"""The order-value component of the scorer (`assets.anomalies.scoring`, step 5): revenue whose
average order value (revenue / orders that day) is far from its past four weeks' is unusual and
far from expected, in a small segment where the total's own noise hides it.

Checked against a small pure-Python reference: the order-value deviation day by day (log, median
and MAD with `statistics`, the sampling floor from its formula), its score from its formula, and
the flag rule on a revenue series."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from assets.anomalies import scoring
from assets.anomalies.scoring import (
    AMOUNT_CV,
    AUTO_SCORE_LINE,
    MIN_ABS_Z,
    ORDER_VALUE_DAYS,
    ORDER_VALUE_Z,
    SPREAD_DAYS,
    _order_value_z,
    order_value_score,
    score_series,
)

DAYS = 60
WHALE_DAY = 40


def _orders_and_revenue(seed: int, days: int = DAYS) -> tuple[np.ndarray, np.ndarray]:
    """A small segment: a few orders a day (some days none), lognormal order values."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(3.0, days).astype(float)
    revenue = np.array([rng.lognormal(3.6, 0.6, int(n)).sum() for n in orders])
    return orders, revenue


def _revenue_series(orders: np.ndarray, revenue: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric_date": pd.date_range("2026-03-02", periods=len(orders), freq="D"),
            "metric": "revenue",
            "dimension": "channel",
            "segment": "referral",
            "value": revenue,
            "volume": orders,
        }
    )


def _reference_order_value_z(orders: np.ndarray, revenue: np.ndarray) -> list[float]:
    """As the scorer's docstring states it: log(revenue / orders) against the median of the past
    SPREAD_DAYS days' (days with orders), in units of their MAD x 1.4826 (at least
    ORDER_VALUE_DAYS of them), never below sqrt(log(1 + cv^2 / orders)); NaN without orders."""
    logs = [
        math.log(r / n) if n > 0 and r > 0 else math.nan
        for n, r in zip(orders, revenue, strict=True)
    ]
    out = []
    for t, today in enumerate(logs):
        past = [v for v in logs[max(0, t - SPREAD_DAYS) : t] if not math.isnan(v)]
        if math.isnan(today) or len(past) < ORDER_VALUE_DAYS:
            out.append(math.nan)
            continue
        centre = statistics.median(past)
        spread = 1.4826 * statistics.median(abs(v - centre) for v in past)
        floor = math.sqrt(math.log(1 + AMOUNT_CV**2 / max(orders[t], 1.0)))
        out.append((today - centre) / max(spread, floor))
    return out


def _reference_order_value_score(z: float) -> float:
    """2 ** (-k * ORDER_VALUE_Z / |z|) with 2 ** -k = AUTO_SCORE_LINE; 0 at z = 0 or NaN."""
    if math.isnan(z) or z == 0:
        return 0.0
    k = -math.log2(AUTO_SCORE_LINE)
    return 2 ** (-k * ORDER_VALUE_Z / abs(z))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_order_value_deviation_matches_the_reference(seed: int) -> None:
    orders, revenue = _orders_and_revenue(seed)
    got = _order_value_z(revenue, orders)
    want = _reference_order_value_z(orders, revenue)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert np.isnan(got[orders == 0]).all() and np.isfinite(got[ORDER_VALUE_DAYS + 3 :]).any()


def test_order_value_score_reaches_the_forest_line_exactly_at_the_order_value_line() -> None:
    z = np.array([0.0, -1.0, 2.0, -ORDER_VALUE_Z, ORDER_VALUE_Z, 6.0, np.nan])
    want = [_reference_order_value_score(float(v)) for v in z]
    np.testing.assert_allclose(order_value_score(z), want, rtol=1e-12, atol=0)
    assert order_value_score(np.array([ORDER_VALUE_Z]))[0] == pytest.approx(AUTO_SCORE_LINE)


@pytest.fixture
def quiet_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forest that finds nothing unusual: what remains to flag revenue is the order value."""

    def below_the_line(features: pd.DataFrame, earlier: pd.DataFrame, contamination):
        rows = len(features)
        return np.full(rows, AUTO_SCORE_LINE - 0.2), np.full(rows, AUTO_SCORE_LINE)

    monkeypatch.setattr(scoring, "_forest_scores", below_the_line)


def test_a_five_times_order_value_in_a_small_segment_is_flagged(quiet_forest: None) -> None:
    orders, revenue = _orders_and_revenue(4)
    orders[WHALE_DAY] = 3.0
    revenue[WHALE_DAY] = 3 * 5 * math.exp(3.6 + 0.6**2 / 2)  # three orders at 5x the mean value
    scored = score_series(_revenue_series(orders, revenue))
    day = scored.loc[WHALE_DAY]
    z = _reference_order_value_z(orders, revenue)[WHALE_DAY]
    assert day["order_value_z"] == pytest.approx(z) and z >= ORDER_VALUE_Z
    # The total alone is not far enough: a few orders a day make revenue that noisy.
    assert abs(day["f_z_expected"]) < MIN_ABS_Z
    assert scored.index[scored["is_anomaly"]].tolist() == [WHALE_DAY]
    assert day["direction"] == "spike"
    assert day["score"] == pytest.approx(max(AUTO_SCORE_LINE - 0.2, order_value_score(z)))
    assert day["score"] >= AUTO_SCORE_LINE


def test_more_orders_at_the_usual_value_is_no_order_value_anomaly(quiet_forest: None) -> None:
    """A burst of orders raises revenue, not the order value: this rule stays quiet."""
    orders, revenue = _orders_and_revenue(5)
    orders[WHALE_DAY] = 9.0
    revenue[WHALE_DAY] = 9 * math.exp(3.6 + 0.6**2 / 2)
    scored = score_series(_revenue_series(orders, revenue))
    assert abs(scored.loc[WHALE_DAY, "order_value_z"]) < ORDER_VALUE_Z
    assert not scored["is_anomaly"].any()


def test_a_drop_in_order_value_with_revenue_up_is_not_flagged(quiet_forest: None) -> None:
    """The rule needs revenue to move the way the order value did."""
    orders, revenue = _orders_and_revenue(6)
    orders[WHALE_DAY] = 60.0
    revenue[WHALE_DAY] = 60 * math.exp(3.6) / 6  # twenty times the orders at a sixth of the value
    scored = score_series(_revenue_series(orders, revenue))
    day = scored.loc[WHALE_DAY]
    assert day["order_value_z"] <= -ORDER_VALUE_Z and day["value"] > day["expected"]
    assert not scored["is_anomaly"].any()


def test_an_order_value_day_scores_the_same_before_and_after_later_days_arrive() -> None:
    """Scored once (CONTRACT §3): the order value reads only the day and earlier days."""
    orders, revenue = _orders_and_revenue(7, 70)
    revenue[WHALE_DAY] *= 6.0
    revenue[WHALE_DAY + 4 :] *= 3.0  # later days that would move any look-ahead baseline
    columns = ["metric_date", "score", "is_anomaly", "order_value_z", "expected"]
    whole = score_series(_revenue_series(orders, revenue))[columns].iloc[: WHALE_DAY + 1]
    prefix = score_series(_revenue_series(orders[: WHALE_DAY + 1], revenue[: WHALE_DAY + 1]))
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), prefix[columns])
