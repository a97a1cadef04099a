"""The scorer's flag decision (`assets.anomalies.scoring._flag`, step 4 of its docstring) row
by row against a small pure-Python reference, and the warm-up on whole series.

The decision reads only a row's own features, so hand-made feature rows (each its own series,
so no run of days) test every branch: the forest's line, the extreme level deviation and the
3.25 / 2.5 sd it needs from expected, the order value, the relative-change rule, and the
warm-up (`min_history_days`), before which nothing is flagged however far out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from assets.anomalies import scoring
from assets.anomalies.scoring import (
    AUTO_SCORE_LINE,
    EXTREME_EXPECTED_Z,
    EXTREME_LEVEL_Z,
    LEVEL_HISTORY_DAYS,
    MIN_ABS_Z,
    MIN_RELATIVE_CHANGE,
    ORDER_VALUE_Z,
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
    level_z = zl if history >= LEVEL_HISTORY_DAYS else 0.0
    extreme = abs(level_z) >= EXTREME_LEVEL_Z and _same_sign(level_z, ze)
    order_z = 0.0 if math.isnan(row["order_value_z"]) else row["order_value_z"]
    order_value = abs(order_z) >= ORDER_VALUE_Z and _same_sign(order_z, ze)
    forest = row["score"] >= row["threshold"]
    unusual = forest or extreme or order_value
    far = abs(ze) >= MIN_ABS_Z or order_value or (extreme and abs(ze) >= EXTREME_EXPECTED_Z)
    relative = row["value"] / row["expected"] - 1
    changed = abs(relative) >= (MIN_RELATIVE_CHANGE if row["metric"] == "active_users" else 0.0)
    flagged = judged and unusual and far and changed
    score = max(
        row["score"],
        _reference_line_score(level_z, EXTREME_LEVEL_Z),
        _reference_line_score(order_z, ORDER_VALUE_Z),
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
    branches = {"young": 0, "shift": 0, "order": 0}
    for row, got_flag, got_score in zip(
        features.to_dict("records"), decided["is_anomaly"], decided["score"], strict=True
    ):
        want_flag, want_score = _reference(row, settings.min_history_days)
        assert bool(got_flag) == want_flag, row
        assert got_score == pytest.approx(want_score, rel=1e-12), row
        if row["history_days"] < settings.min_history_days and abs(row["f_z_expected"]) > 5:
            branches["young"] += 1  # far out, too young: the reference says not flagged
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


def _young(seed: int, days: int) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 5.0, days)


@pytest.mark.parametrize("min_history_days", [14, 28])
def test_nothing_is_flagged_before_min_history_days_however_far_out(min_history_days: int) -> None:
    y = _young(4, 40)
    y[[5, 10, 13]] = [300.0, 250.0, 20.0]
    y[min_history_days + 3] = 400.0
    scored = score_series(_plain_series(y), AnomalySettings(min_history_days=min_history_days))
    young = scored["history_days"] < min_history_days
    assert not scored.loc[young, "is_anomaly"].any()
    assert scored.loc[young, "score"].max() >= AUTO_SCORE_LINE  # scored, just not flagged
    assert scored["is_anomaly"].iloc[min_history_days + 3]
