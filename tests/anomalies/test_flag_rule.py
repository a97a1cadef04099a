"""The scorer's flag decision (`assets.anomalies.scoring._flag`, step 4 of its docstring) row
by row against a small pure-Python reference, and the warm-up on whole series.

The decision reads only a row's own features, so hand-made feature rows (each its own series,
so no run of days) test every branch: the forest's line, the extreme level deviation and the
3.25 / 2.5 sd it needs from expected, the strong level deviation the forest agrees with, the
order value, the relative-change rule, and the warm-up (`min_history_days`), before which
nothing is flagged however far out."""

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
    MAX_RUN_DAYS,
    MIN_ABS_Z,
    MIN_RELATIVE_CHANGE,
    NEXT_DAY_Z,
    ORDER_VALUE_Z,
    STRONG_LEVEL_Z,
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
    """(is_anomaly, score) of one row as the docstring states the rule, for a row with no
    row before it in its series."""
    candidate, _, score = _row_rules(row, min_history)
    return candidate, score


def _row_rules(row: dict, min_history: int) -> tuple[bool, bool, float]:
    """(candidate on its own, candidate if the row before it is one in its direction, score)."""
    history, ze, zl = row["history_days"], row["f_z_expected"], row["f_z_level"]
    judged = history >= min_history
    level_z = zl if history >= LEVEL_HISTORY_DAYS else 0.0
    extreme = abs(level_z) >= EXTREME_LEVEL_Z and _same_sign(level_z, ze)
    order_z = 0.0 if math.isnan(row["order_value_z"]) else row["order_value_z"]
    order_value = abs(order_z) >= ORDER_VALUE_Z and _same_sign(order_z, ze)
    forest = row["score"] >= row["threshold"]
    # a level shift: extreme, or strong with the forest agreeing
    shift = extreme or (forest and abs(level_z) >= STRONG_LEVEL_Z and _same_sign(level_z, ze))
    unusual = forest or extreme or order_value
    far = abs(ze) >= MIN_ABS_Z or order_value or (shift and abs(ze) >= EXTREME_EXPECTED_Z)
    relative = row["value"] / row["expected"] - 1
    changed = abs(relative) >= (MIN_RELATIVE_CHANGE if row["metric"] == "active_users" else 0.0)
    candidate = judged and unusual and far and changed
    continues = judged and forest and abs(ze) >= NEXT_DAY_Z and changed
    score = max(
        row["score"],
        _reference_line_score(level_z, EXTREME_LEVEL_Z),
        _reference_line_score(order_z, ORDER_VALUE_Z),
    )
    return candidate, continues, score


def _feature_rows(seed: int, rows: int = 2000) -> pd.DataFrame:
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
    branches = {"young": 0, "shift": 0, "strong": 0, "order": 0}
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
            if abs(row["f_z_level"]) < EXTREME_LEVEL_Z:
                branches["strong"] += 1
        if want_flag and abs(row["f_z_expected"]) < EXTREME_EXPECTED_Z:
            branches["order"] += 1
    # every new branch of the rule is exercised, and each flagged row scores at the line or more
    assert min(branches.values()) > 0, branches
    assert (decided.loc[decided["is_anomaly"], "score"] >= AUTO_SCORE_LINE).all()


def _reference_runs(rows: list[dict], min_history: int) -> list[tuple[bool, int]]:
    """(is_anomaly, run_day) of one series' rows in date order: a run counts consecutive
    candidates in one direction; a row that only `continues` is a candidate after a candidate
    in its direction; the first MAX_RUN_DAYS of a run are flagged."""
    decided, length, previous = [], 0, None
    for row in rows:
        candidate, continues, _ = _row_rules(row, min_history)
        direction = "spike" if row["value"] >= row["expected"] else "dip"
        candidate = candidate or (continues and direction == previous)
        length = length + 1 if candidate and direction == previous else int(candidate)
        previous = direction if candidate else None
        decided.append((candidate and length <= MAX_RUN_DAYS, length))
    return decided


def _feature_series(seed: int, series: int = 60, days: int = 30) -> pd.DataFrame:
    """Hand-made feature rows, `days` in a row for each of `series` series: runs of days far
    from expected in one direction, each day's features drawn as in `_feature_rows`."""
    frames = []
    for number in range(series):
        rows = _feature_rows(seed * 1000 + number, days)
        # runs: the sign of the deviation stays for a few days at a time
        sign = np.repeat(np.random.default_rng(number).choice([-1, 1], days), 3)[:days]
        for column in ("f_z_expected", "f_z_level"):
            rows[column] = np.abs(rows[column]) * sign
        rows["value"] = rows["expected"] * (1 + rows["f_z_expected"] * 0.06)
        rows["history_days"] = np.arange(days) + 5
        rows["metric_date"] = pd.date_range("2026-03-02", periods=days, freq="D")
        rows["segment"] = f"s{number}"
        rows["metric"] = rows["metric"].iloc[0]
        frames.append(rows)
    return pd.concat(frames, ignore_index=True).sort_values(scoring.ROW_KEY, ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_runs_and_the_day_after_a_candidate_match_the_reference(seed: int) -> None:
    """Whole series: run days, the lower line for a run's next day, the run limit; and the
    same when the second half is decided in a later run that continues the stored runs."""
    features = _feature_series(seed)
    settings = AnomalySettings()
    decided = scoring._flag(features.copy(), settings, scoring._empty_earlier(features))
    carried = 0
    for _, rows in features.groupby("segment", sort=False):
        want = _reference_runs(rows.to_dict("records"), settings.min_history_days)
        got = decided.loc[rows.index]
        assert list(zip(got["is_anomaly"], got["run_day"], strict=True)) == want
        alone = [_row_rules(row, settings.min_history_days)[0] for row in rows.to_dict("records")]
        carried += int((got["run_day"].to_numpy() > 0).sum() - sum(alone))
    assert carried > 0 and decided["is_anomaly"].any()
    # A later run continues the runs of the rows stored before it.
    split = pd.Timestamp("2026-03-17")
    first = features[features["metric_date"] < split]
    earlier = scoring._flag(first.copy(), settings, scoring._empty_earlier(first))
    later = scoring._flag(
        features[features["metric_date"] >= split].reset_index(drop=True), settings, earlier
    )
    columns = ["metric_date", "segment", "is_anomaly", "run_day"]
    whole = decided.loc[decided["metric_date"] >= split, columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(later[columns], whole)


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
