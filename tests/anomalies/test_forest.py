"""The scorer's forest and its medians are scikit-learn's and numpy's, to the bit: the rows a
backfill writes are the rows the per-day IsolationForest wrote (CONTRACT §3: a scored day never
changes). A new scikit-learn whose tree internals differ fails here, not silently in the rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assets.anomalies.forest import fit_forest
from assets.anomalies.scoring import _baseline, _nanmedian


def _features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Heavy-tailed deviations, a few outliers, a day-of-week column: what the scorer fits."""
    x = rng.standard_t(3, size=(rows, 5))
    x[: max(1, rows // 50), 1] *= 40
    x[:, 4] = rng.integers(0, 7, rows)
    return x


@pytest.mark.parametrize("rows", [3, 11, 255, 256, 257, 2_000, 10_300])
@pytest.mark.parametrize("random_state", [0, 7])
def test_forest_scores_equal_sklearn_isolation_forest_to_the_bit(
    rows: int, random_state: int
) -> None:
    rng = np.random.default_rng(rows + random_state)
    train, scored = _features(rng, rows), _features(rng, 80)
    sklearn_model = make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=100, random_state=random_state)
    ).fit(train)
    forest = fit_forest(train, 100, random_state)
    np.testing.assert_array_equal(forest.score(scored), -sklearn_model.score_samples(scored))


def test_a_numeric_contamination_line_equals_sklearn_offset() -> None:
    rng = np.random.default_rng(3)
    train = _features(rng, 1_500)
    isolation = IsolationForest(n_estimators=100, contamination=0.02, random_state=0)
    make_pipeline(StandardScaler(), isolation).fit(train)
    assert fit_forest(train, 100, 0).training_line(train, 0.02) == -isolation.offset_


def test_a_forest_fitted_again_on_the_same_rows_gives_the_same_scores() -> None:
    rng = np.random.default_rng(5)
    train, scored = _features(rng, 3_000), _features(rng, 50)
    first = fit_forest(train, 100, 0).score(scored)
    fit_forest(train[:900], 100, 0)  # another size in between: cached draws must not leak
    np.testing.assert_array_equal(fit_forest(train, 100, 0).score(scored), first)


def test_row_medians_equal_numpy_nanmedian_row_by_row() -> None:
    rng = np.random.default_rng(11)
    windows = rng.lognormal(size=(3_000, 28))
    windows[rng.random(windows.shape) < 0.3] = np.nan
    windows[:40] = np.nan  # rows without any value: NaN, no warning
    windows[40:80, 1:] = np.nan  # one value
    expected = np.array(
        [np.nanmedian(row) if not np.isnan(row).all() else np.nan for row in windows]
    )
    np.testing.assert_array_equal(_nanmedian(windows), expected)


def _reference_baseline(y: np.ndarray, period: int, steps: np.ndarray) -> tuple[np.ndarray, ...]:
    """The baseline day by day, as the scorer's docstring states it (one loop per day)."""
    n = y.shape[0]
    index = np.full(n, np.nan)
    for t in range(n):
        week = y[max(0, t - period) : t]
        weekly = np.nanmedian(week) if t and not np.isnan(week).all() else np.nan
        if steps[t] >= period and weekly > 0:
            index[t] = y[t] / weekly
    level, expected = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(1, n):
        past = y[max(0, t - period) : t]
        factors = None
        if t >= period:
            medians = np.full(period, np.nan)
            for phase, day in enumerate(range(t - period, t)):
                same = index[max(day % period, day - 3 * period) : day + 1 : period]
                if (~np.isnan(same)).any():
                    medians[phase] = np.nanmedian(same)
            if not np.isnan(medians).any() and medians.mean() > 0:
                factors = medians / medians.mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            adjusted = past if factors is None else np.where(factors > 0, past / factors, np.nan)
        if not np.isnan(adjusted).all():
            level[t] = np.nanmedian(adjusted)
            expected[t] = level[t] * (1.0 if factors is None else factors[0])
    return level, expected


@pytest.mark.parametrize("period", [7, 24])
def test_baseline_of_every_day_at_once_equals_the_day_by_day_definition(period: int) -> None:
    rng = np.random.default_rng(period)
    for trial in range(12):
        n = int(rng.integers(2, 160))
        y = rng.poisson(rng.uniform(1, 60), n) * (1.0 + (np.arange(n) % period == 3))
        if trial % 3 == 0:
            y[rng.random(n) < 0.2] = np.nan  # a rate on days without users
        if trial % 4 == 0:
            y[rng.random(n) < 0.3] = 0.0  # a quiet segment
        steps = int(rng.choice([0, 3, 40])) + np.arange(n)  # a daily run's tail of history
        got, want = _baseline(y, period, steps), _reference_baseline(y, period, steps)
        for got_part, want_part in zip(got, want, strict=True):
            np.testing.assert_array_equal(got_part, want_part)
