"""The extreme-level component of the scorer (`assets.anomalies.scoring`): a day many robust
units from its four-week level is unusual whatever the forest says, and its score says so.

Checked against a small pure-Python reference: the level deviation day by day (median and MAD
with `statistics`), the level score from its formula, the flag rule row by row."""

from __future__ import annotations

import math
import statistics

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
    NEXT_DAY_Z,
    SPREAD_DAYS,
    STRONG_LEVEL_Z,
    _baseline,
    level_score,
    score_series,
)
from pipelines.settings import AnomalySettings

DAYS = 60
SPIKE_DAY = 40


def _plain_series(values: np.ndarray) -> pd.DataFrame:
    """One series of a metric outside CONTRACT §3 (no noise floor), as the benchmark scores NAB."""
    return pd.DataFrame(
        {
            "metric_date": pd.date_range("2026-03-02", periods=len(values), freq="D"),
            "metric": "value",
            "dimension": "all",
            "segment": "all",
            "value": values,
        }
    )


def _noisy(seed: int, days: int = DAYS) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 5.0, days)


def _reference_level_and_scale(y: np.ndarray, period: int = 7) -> list[tuple[float, float]]:
    """Per day, the level and the robust unit of the deviation from it, as the scorer's
    docstring states them: the MAD (x 1.4826) of the past SPREAD_DAYS values, at least 5 of
    them, never below 2% of the level (a metric outside CONTRACT §3 has no noise floor)."""
    level, _ = _baseline(y, period, np.arange(len(y)))
    out = []
    for t in range(len(y)):
        past = [v for v in y[max(0, t - SPREAD_DAYS) : t] if not math.isnan(v)]
        spread = 0.0
        if len(past) >= 5:
            centre = statistics.median(past)
            spread = 1.4826 * statistics.median(abs(v - centre) for v in past)
        reference = 0.0 if math.isnan(level[t]) else abs(level[t])
        out.append((float(level[t]), max(spread, 0.02 * reference, 1e-9)))
    return out


def _reference_level_z(y: np.ndarray) -> list[float]:
    return [
        (v - level) / scale
        for v, (level, scale) in zip(y, _reference_level_and_scale(y), strict=True)
    ]


def _reference_level_score(z: float) -> float:
    """2 ** (-k * EXTREME_LEVEL_Z / |z|) with 2 ** -k = AUTO_SCORE_LINE; 0 at z = 0."""
    if z == 0 or math.isnan(z):
        return 0.0
    k = math.log2(1 / AUTO_SCORE_LINE)
    return 2 ** (-k * EXTREME_LEVEL_Z / abs(z))


def test_level_deviation_equals_the_day_by_day_definition() -> None:
    for seed in range(4):
        y = _noisy(seed)
        y[SPIKE_DAY] += 60.0
        scored = score_series(_plain_series(y))
        want = _reference_level_z(y)
        got = scored["f_z_level"].to_numpy()
        for t in range(len(y)):
            if math.isnan(want[t]):
                assert math.isnan(got[t])
            else:
                assert got[t] == pytest.approx(want[t], rel=1e-9, abs=1e-12)


def test_level_score_reaches_the_forest_line_exactly_at_the_extreme_deviation() -> None:
    z = np.array([0.0, -0.5, 1.0, 3.0, -EXTREME_LEVEL_Z, EXTREME_LEVEL_Z, 7.5, -10.0, 80.0, np.nan])
    want = [_reference_level_score(float(v)) for v in z]
    np.testing.assert_allclose(level_score(z), want, rtol=1e-12, atol=0)
    assert level_score(np.array([EXTREME_LEVEL_Z]))[0] == pytest.approx(AUTO_SCORE_LINE)
    ordered = level_score(np.linspace(0, 40, 81))
    assert np.all(np.diff(ordered) > 0)


@pytest.fixture
def quiet_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forest that finds nothing unusual (every score under the line): what remains to flag
    a day is the extreme-level rule alone."""

    def below_the_line(features: pd.DataFrame, earlier: pd.DataFrame, contamination):
        rows = len(features)
        return np.full(rows, AUTO_SCORE_LINE - 0.2), np.full(rows, AUTO_SCORE_LINE)

    monkeypatch.setattr(scoring, "_forest_scores", below_the_line)


def test_a_day_far_from_its_level_is_flagged_when_the_forest_scores_it_low(
    quiet_forest: None,
) -> None:
    y = _noisy(5)
    y[SPIKE_DAY] += 80.0  # 16 standard deviations of the noise
    scored = score_series(_plain_series(y))
    assert scored.index[scored["is_anomaly"]].tolist() == [SPIKE_DAY]
    day = scored.loc[SPIKE_DAY]
    assert day["f_z_level"] >= EXTREME_LEVEL_Z and day["direction"] == "spike"
    assert day["score"] == pytest.approx(_reference_level_score(day["f_z_level"]))
    assert day["score"] >= AUTO_SCORE_LINE


def test_a_moderate_deviation_needs_the_forest(quiet_forest: None) -> None:
    y = _noisy(6)
    level, scale = _reference_level_and_scale(y)[SPIKE_DAY]
    y[SPIKE_DAY] = level + 4.0 * scale  # 4 robust units: under the extreme line
    scored = score_series(_plain_series(y))
    assert scored.loc[SPIKE_DAY, "f_z_level"] == pytest.approx(4.0)
    assert not scored["is_anomaly"].any()
    assert scored["score"].max() < AUTO_SCORE_LINE


def test_flags_follow_the_rule_row_by_row() -> None:
    """Every row: flagged exactly when it is unusual (the forest's line, or an extreme level
    deviation in the direction of its deviation from expected), far enough from expected
    (EXTREME_EXPECTED_Z for an extreme one, a strong one the forest agrees with, or the day
    after a candidate in its direction that the forest finds unusual; else MIN_ABS_Z), old
    enough, and among the first MAX_RUN_DAYS of its run."""
    rng = np.random.default_rng(9)
    series = []
    for seed in range(3):
        y = _noisy(seed + 20, 90)
        y[rng.integers(30, 90, 4)] *= rng.choice([0.3, 1.8, 2.5], 4)
        series.append(_plain_series(y).assign(segment=f"s{seed}"))
    scored = score_series(pd.concat(series, ignore_index=True))
    settings = AnomalySettings()
    # The row before each row in its series: was it a candidate (run day > 0), which way.
    before = scored.groupby(["segment"], sort=False)[["run_day", "direction"]].shift(1)
    scored["after_candidate"] = (before["run_day"].fillna(0) > 0) & (
        before["direction"] == scored["direction"]
    )
    extremes = 0
    for row in scored.itertuples(index=False):
        level_z = row.f_z_level if row.history_days >= LEVEL_HISTORY_DAYS else 0.0
        same_way = math.copysign(1, level_z) == math.copysign(1, row.f_z_expected)
        extreme = abs(level_z) >= EXTREME_LEVEL_Z and same_way
        # `score` is the larger of the forest's and the level score: where the level score is
        # the larger, the forest's is known only to be at most `score`.
        forest_known = row.score > _reference_level_score(level_z) or row.score < row.threshold
        if not (extreme or forest_known):
            continue
        forest = not math.isnan(row.threshold) and row.score >= row.threshold
        # A level shift (extreme, or strong with the forest) needs EXTREME_EXPECTED_Z from
        # expected, a run's next day the forest finds unusual NEXT_DAY_Z, the rest MIN_ABS_Z.
        shift = extreme or (forest and abs(level_z) >= STRONG_LEVEL_Z and same_way)
        line = EXTREME_EXPECTED_Z if shift else MIN_ABS_Z
        if forest and row.after_candidate:
            line = min(line, NEXT_DAY_Z)
        far = abs(row.f_z_expected) >= line
        if row.history_days < settings.min_history_days:
            assert not row.is_anomaly  # the warm-up
            continue
        candidate = (forest or extreme) and far
        assert row.is_anomaly == (candidate and row.run_day <= MAX_RUN_DAYS), row
        if extreme:
            extremes += 1
            assert row.score >= AUTO_SCORE_LINE
    assert extremes > 0 and scored["is_anomaly"].any()


def test_an_extreme_day_scores_the_same_before_and_after_later_days_arrive() -> None:
    """Scored once (CONTRACT §3): the rule reads only the day's own features, which come from
    earlier days, so the rows up to the spike are the same without the days after it."""
    y = _noisy(7, 75)
    y[SPIKE_DAY] += 80.0
    y[SPIKE_DAY + 5 :] *= 1.5  # later days that would move any look-ahead baseline
    columns = ["metric_date", "score", "is_anomaly", "run_day", "f_z_level", "expected"]
    whole = score_series(_plain_series(y))[columns].iloc[: SPIKE_DAY + 1]
    prefix = score_series(_plain_series(y[: SPIKE_DAY + 1]))[columns]
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), prefix)
    assert whole["is_anomaly"].iloc[SPIKE_DAY]
