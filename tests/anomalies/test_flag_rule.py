"""The scorer's flag decision (`assets.anomalies.scoring._flag`, steps 4-7 of its docstring) row
by row against a small pure-Python reference, and the early-days rule on whole series.

The decision reads only a row's own features, so hand-made feature rows (each its own series,
so no run of days) test every branch: the forest's line, the extreme level deviation and the
3.25 / 2.5 sd it needs from expected, the order value, the relative-change rule, and the
early days (from half of `min_history_days`), where only a novel day is flagged."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from assets.anomalies import scoring
from assets.anomalies.scoring import (
    AUTO_SCORE_LINE,
    EARLY_RANGE_Z,
    EARLY_Z,
    EXTREME_EXPECTED_Z,
    EXTREME_LEVEL_Z,
    LEVEL_HISTORY_DAYS,
    MIN_ABS_Z,
    MIN_RELATIVE_CHANGE,
    ORDER_VALUE_Z,
    SPREAD_DAYS,
    score_series,
)
from pipelines.settings import AnomalySettings


def _reference_line_score(z: float, line: float) -> float:
    if math.isnan(z) or z == 0:
        return 0.0
    return AUTO_SCORE_LINE ** (line / abs(z))


def _same_sign(a: float, b: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and math.copysign(1, a) == math.copysign(1, b)


def _reference(row: dict, min_history: int) -> tuple[bool, float]:
    """(is_anomaly, score) of one row as the docstring states the rule."""
    history, ze, zl = row["history_days"], row["f_z_expected"], row["f_z_level"]
    judged = history >= min_history
    early = not judged and history >= min_history // 2
    level_z = zl if history >= LEVEL_HISTORY_DAYS else 0.0
    extreme = abs(level_z) >= EXTREME_LEVEL_Z and _same_sign(level_z, ze)
    order_z = 0.0 if math.isnan(row["order_value_z"]) else row["order_value_z"]
    order_value = abs(order_z) >= ORDER_VALUE_Z and _same_sign(order_z, ze)
    range_z = 0.0 if math.isnan(row["range_z"]) else row["range_z"]
    novel_z = min(abs(ze), abs(zl))
    novel = (
        early
        and novel_z >= EARLY_Z
        and _same_sign(zl, ze)
        and range_z * math.copysign(1, ze) >= EARLY_RANGE_Z
    )
    forest = row["score"] >= row["threshold"]
    unusual = novel if early else (forest or extreme or order_value)
    far = abs(ze) >= MIN_ABS_Z or order_value or (extreme and abs(ze) >= EXTREME_EXPECTED_Z)
    relative = row["value"] / row["expected"] - 1
    changed = abs(relative) >= (MIN_RELATIVE_CHANGE if row["metric"] == "active_users" else 0.0)
    flagged = (judged or novel) and unusual and far and changed
    score = max(
        row["score"],
        _reference_line_score(level_z, EXTREME_LEVEL_Z),
        _reference_line_score(order_z, ORDER_VALUE_Z),
        _reference_line_score(novel_z if novel else 0.0, EARLY_Z),
    )
    return flagged, score


def _feature_rows(seed: int, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ze = rng.normal(0, 3.5, rows)
    expected = rng.uniform(50, 150, rows)
    frame = pd.DataFrame(
        {
            "metric_date": pd.Timestamp("2026-03-02"),
            "metric": rng.choice(["active_users", "value"], rows),
            "dimension": "all",
            "segment": [f"s{i}" for i in range(rows)],
            # far from expected in robust units goes with a large relative change mostly
            "value": expected * (1 + ze * rng.uniform(0.01, 0.15, rows)),
            "volume": np.nan,
            "expected": expected,
            "history_days": rng.choice([3, 6, 7, 9, 13, 14, 20, 40], rows),
            "f_z_expected": ze,
            "f_z_level": ze * rng.uniform(0.5, 2.5, rows) * rng.choice([1, 1, 1, -1], rows),
            "order_value_z": np.where(rng.random(rows) < 0.3, rng.normal(0, 4, rows), np.nan),
            "range_z": np.where(rng.random(rows) < 0.8, rng.normal(0, 1.5, rows), np.nan),
            "score": rng.uniform(0.3, 0.8, rows),
            "threshold": AUTO_SCORE_LINE,
        }
    )
    return frame


@pytest.mark.parametrize("seed", [1, 2])
def test_the_flag_decision_matches_the_reference_row_by_row(seed: int) -> None:
    features = _feature_rows(seed)
    settings = AnomalySettings()
    decided = scoring._flag(features.copy(), settings, scoring._empty_earlier(features))
    branches = {"early": 0, "shift": 0, "order": 0}
    for row, got_flag, got_score in zip(
        features.to_dict("records"), decided["is_anomaly"], decided["score"], strict=True
    ):
        want_flag, want_score = _reference(row, settings.min_history_days)
        assert bool(got_flag) == want_flag, row
        assert got_score == pytest.approx(want_score, rel=1e-12), row
        if want_flag and row["history_days"] < settings.min_history_days:
            branches["early"] += 1
        if want_flag and EXTREME_EXPECTED_Z <= abs(row["f_z_expected"]) < MIN_ABS_Z:
            branches["shift"] += 1
        if want_flag and abs(row["f_z_expected"]) < EXTREME_EXPECTED_Z:
            branches["order"] += 1
    # every new branch of the rule is exercised, and each flagged row scores at the line or more
    assert min(branches.values()) > 0, branches
    assert (decided.loc[decided["is_anomaly"], "score"] >= AUTO_SCORE_LINE).all()


def _plain_series(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric_date": pd.date_range("2026-03-02", periods=len(values), freq="D"),
            "metric": "value",
            "dimension": "all",
            "segment": "all",
            "value": values,
        }
    )


def _young(seed: int, days: int = 13) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 5.0, days)


def test_a_day_far_outside_everything_seen_is_flagged_from_day_seven() -> None:
    y = _young(1)
    y[10] = 200.0  # twice anything of the first ten days
    scored = score_series(_plain_series(y))
    assert scored.index[scored["is_anomaly"]].tolist() == [10]
    day = scored.loc[10]
    assert day["history_days"] == 10 and day["direction"] == "spike"
    assert min(abs(day["f_z_expected"]), abs(day["f_z_level"])) >= EARLY_Z
    assert day["range_z"] >= EARLY_RANGE_Z and day["score"] >= AUTO_SCORE_LINE


def test_range_beyond_the_past_matches_a_reference() -> None:
    """`range_z`: how far beyond the past SPREAD_DAYS days' range, in the robust units of the
    deviation from expected (a plain metric: the values themselves; 0 inside the range)."""
    y = _young(2, 40)
    y[[12, 25, 33]] = [180.0, 20.0, 104.0]
    scored = score_series(_plain_series(y))
    for t in range(1, len(y)):
        past = y[max(0, t - SPREAD_DAYS) : t]
        beyond = max(y[t] - past.max(), 0.0) + min(y[t] - past.min(), 0.0)
        sigma = (y[t] - scored.loc[t, "expected"]) / scored.loc[t, "f_z_expected"]
        assert scored.loc[t, "range_z"] == pytest.approx(beyond / sigma, abs=1e-9), t


def test_the_first_days_and_ordinary_young_days_are_not_flagged() -> None:
    y = _young(3)
    y[5] = 300.0  # under half the warm-up: nothing is judged
    y[11] = y[:11].max() + 1.0  # a new high by a hair: not novel enough
    scored = score_series(_plain_series(y))
    assert not scored["is_anomaly"].any()


def test_a_user_warm_up_moves_the_early_days_with_it() -> None:
    y = _young(4, 30)
    y[10] = 250.0
    default = score_series(_plain_series(y))
    longer = score_series(_plain_series(y), AnomalySettings(min_history_days=28))
    assert default["is_anomaly"].iloc[10]
    assert not longer["is_anomaly"].iloc[:14].any()  # early days from day 14 of 28


def test_an_early_flag_is_the_same_before_and_after_later_days_arrive() -> None:
    y = _young(5, 40)
    y[9] = 220.0
    y[20:] *= 1.6
    columns = ["metric_date", "score", "is_anomaly", "range_z", "expected"]
    whole = score_series(_plain_series(y))[columns].iloc[:10]
    prefix = score_series(_plain_series(y[:10]))[columns]
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), prefix)
    assert whole["is_anomaly"].iloc[9]
