"""Anomaly scoring of daily metric series (CONTRACT §3 `anomalies`): plain functions, no Dagster.

`score_anomalies` scores a `daily_metrics` frame and writes each row's sentence
(`assets.anomalies.explain`); `score_series` is the scorer itself, also used by the benchmark.

How a day is judged, in the order the code runs:

1. Every (metric, dimension, segment) of `daily_metrics` is one daily series, its calendar
   completed: a segment with no row on a day had no activity, so its counts are 0 that day.
2. Features of day t come from days before t only, so no score changes when later days arrive:
   - `expected` = level x weekday factor. The weekday factor is the median, over the last 4
     same weekdays, of value / (median of the 7 days before it), normalised so the seven
     factors average 1; the level is the median of the last 7 days with the factors divided
     out. A robust same-weekday baseline that follows growth and shifts within a week.
   - Deviations are measured on a variance-stabilised scale (sqrt for counts and revenue,
     arcsine-sqrt for rates) in robust units: the MAD of the past 28 days, never below the
     sampling noise of the metric (Poisson, compound Poisson, binomial).
   - Features: ratio to the median of the last 4 same weekdays, deviation from `expected`,
     deviation from the rolling median, day-over-day change, day of week.
3. An IsolationForest (after a StandardScaler, fixed random_state) is fitted for each day on the
   features of every series on earlier days (an expanding window) and scores that day's rows.
   `score` is the forest's anomaly score 2^(-E[path length] / c(n)), in 0..1. The forests are
   scikit-learn's, built without its per-tree Python overhead (`assets.anomalies.forest`), so a
   backfill that fits one per day stays fast with the same scores to the bit.
4. A row is flagged when it is unusual, it is at least MIN_ABS_Z robust units
   from expected and moved at least MIN_RELATIVE_CHANGE, the series has `min_history_days` of
   history, a rate has enough users behind it, the direction is one the config keeps, and it
   is one of the first MAX_RUN_DAYS days of a run. Unusual: the forest finds it so (score >=
   AUTO_SCORE_LINE, or the training quantile for a numeric `contamination`), or, from
   LEVEL_HISTORY_DAYS of history on, it is at least EXTREME_LEVEL_Z robust units from the
   four-week level in the same direction as from expected (then EXTREME_EXPECTED_Z from
   expected is far enough), or, for revenue, its average order value is ORDER_VALUE_Z robust
   units from its past four weeks' in the direction revenue moved: the forest judges moderate
   deviations, an extreme one needs no second opinion. A level shift the forest finds unusual
   needs only STRONG_LEVEL_Z from the level to be far enough at EXTREME_EXPECTED_Z from
   expected, and the day after a candidate day (same series, same direction) that the forest
   finds unusual is a candidate at NEXT_DAY_Z: a run continues on less evidence than it starts
   on. `score` is the largest of the forest's score, `level_score` and `order_value_score`,
   each reaching AUTO_SCORE_LINE at its line.

Defaults were tuned on demo-generator data and NAB (benchmarks/anomaly_bench.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from assets.anomalies.explain import drivers, explanations, segment_shares
from pipelines.errors import EventpulseError
from pipelines.settings import DAILY_METRICS, METRIC_NAMES, AnomalySettings

SERIES_KEY = ["metric", "dimension", "segment"]
FEATURES = ["f_ratio", "f_z_expected", "f_z_level", "f_z_change", "f_phase"]
ROW_KEY = ["metric_date", *SERIES_KEY]
# The daily_metrics columns scoring reads: its key, then every metric (CONTRACT §3, in order).
DAILY_METRIC_COLUMNS = ["metric_date", "dimension", "segment", *METRIC_NAMES]
ANOMALY_COLUMNS = [
    "metric_date",
    "metric",
    "dimension",
    "segment",
    "value",
    "expected",
    "score",
    "is_anomaly",
    "direction",
    "explanation",
    # extras: the no-flag band (for charts), how far and how old, what drove an `all` flag and
    # which segments explain its change, the comparisons a person asks for first (the same
    # weekday last week, the 4-week median), and the count behind the metric (a rate's users,
    # revenue's typical orders)
    "expected_low",
    "expected_high",
    "relative_change",
    "z_score",
    "history_days",
    "flaggable",
    "driver",
    "segment_shares",
    "last_week",
    "median_4w",
    "volume",
    # what a later run needs to score the next days exactly as one run over all days would:
    # the forest's features of this row and how many days in a row it has been a candidate
    *FEATURES,
    "run_day",
]

# Metric kinds ("count", "amount", "rate") decide the sampling-noise floor, the scale and the
# low-volume guard; a metric outside CONTRACT §3 (the benchmark's) has none.
KINDS = {metric.name: metric.kind for metric in DAILY_METRICS}
# The count behind a metric: a rate's denominator (conversion_rate = purchasers / active_users),
# the transactions an amount is summed over (revenue: purchasers' orders).
VOLUMES = {metric.name: metric.per for metric in DAILY_METRICS if metric.per}
RATES = [name for name, kind in KINDS.items() if kind == "rate"]

# Baseline.
SEASON_WEEKS = 4  # "median of the last 4 same weekdays"
MIN_SEASON_WEEKS = 1  # indexes a weekday needs before the weekday pattern is used
SPREAD_DAYS = 28  # four weeks of residuals for the robust spread
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation
RELATIVE_FLOOR = 0.02  # no series looks tighter than ±2%: a flat line is not a licence to flag
AMOUNT_CV = 0.8  # spread of order values (coefficient of variation) behind revenue noise
BASELINE_ERROR = 1.25  # the baseline itself comes from a few days: widen the sampling floors
SMALL_SAMPLE_POINTS = 3  # widen a spread from n residuals by sqrt(1 + 3 / n)
# Flagging: far from expected in robust units, and a change a person would notice.
MIN_ABS_Z = 3.25
MIN_RELATIVE_CHANGE = 0.2
BAND_Z = MIN_ABS_Z  # the charts' expected band is the no-flag zone
# A shift that lasts is flagged on its first two days; from the third day on it is reported
# as continuing (the alert is out, and it may be the new normal) rather than flagged again.
MAX_RUN_DAYS = 2
# A rate over a handful of users is noise: this many users that day and this many expected
# conversions before a rate can be flagged.
MIN_RATE_USERS = 50
MIN_RATE_EVENTS = 5.0
# The forest, fitted per day on up to half a year of earlier rows. With contamination 'auto'
# a row is unusual from AUTO_SCORE_LINE up: sklearn's line is 0.5 (the paper's rule of thumb);
# on demo-generator data and NAB 0.6 keeps what the forest finds clearly isolated.
AUTO_SCORE_LINE = 0.6
# A day this many robust units (MAD of the past four weeks of values) from the level, the
# robust form of the rolling z-score baseline's statistic, is unusual whatever the forest says.
# The forest under-scores such days when its pool is small (one series, a few weeks: NAB's
# Twitter_volume_KO spike on 2015-03-20 is 8 units out and scores just under 0.6) because a
# day is only isolated by splits on the features where it stands out. 4 and 6 give the same
# benchmark results (benchmarks/results/anomaly_tradeoffs.md).
EXTREME_LEVEL_Z = 5.0
LEVEL_HISTORY_DAYS = SPREAD_DAYS // 2
# Revenue's average order value (revenue / orders that day): robust units of its past four
# weeks (log scale, MAD, at least ORDER_VALUE_DAYS days with orders) that make revenue unusual
# and far from expected (step 4 of the module docstring). On the demo and synthetic
# generators (benchmarks/anomaly_bench.py) no unlabelled day of 10 runs reaches 3 units, and
# every day that does is a labelled order-value incident.
ORDER_VALUE_Z = MIN_ABS_Z
ORDER_VALUE_DAYS = 7
# An extreme level deviation is far enough from expected from this many robust units (step 4):
# the weekday baseline partly follows a large shift.
EXTREME_EXPECTED_Z = 2.5
# A level shift the forest also finds unusual is far enough from EXTREME_EXPECTED_Z on from
# this many robust units from the level (step 4): the two agreeing are a second opinion.
# Measured on NAB's ambient temperature (benchmarks/results/nab_misses.md): its December
# failure rises to 4.35 units from the level (2.71 from expected, forest 0.66); 4.0 would also
# flag an unlabelled February dip at 4.09; on the demo and synthetic generators 4.0 to 4.4
# flag the same cells.
STRONG_LEVEL_Z = 4.25
# The line from expected of a run's next day the forest finds unusual (step 4). 2.25 would also
# catch the ambient failure's second day (F1 0.80) but adds a synthetic false flag.
NEXT_DAY_Z = EXTREME_EXPECTED_Z
N_ESTIMATORS = 100
RANDOM_STATE = 0
TRAIN_DAYS = 182
MIN_TRAIN_ROWS = 10
MIN_TRAIN_HISTORY = 3  # rows whose baseline rests on fewer days are too rough to learn from
FEATURE_CLIP = 50.0


def score_anomalies(
    daily_metrics: Any,
    settings: AnomalySettings | None = None,
    earlier: Earlier | None = None,
) -> pd.DataFrame:
    """Score every (day, metric, segment) of a `daily_metrics` frame (pandas or polars).

    Returns ANOMALY_COLUMNS: the contract columns of `anomalies` plus `expected_low` and
    `expected_high` (the band outside which a day can be flagged), `relative_change`,
    `z_score`, `history_days`, `flaggable` (old enough, and enough users behind a rate),
    `driver` (for a flagged `all` row, the segment that contributed most to the change), the
    forest's features and `run_day`.

    With `earlier` (what a previous run stored, `Earlier`), `daily_metrics` may be only the
    recent days: the rows from `earlier.score_from` on are scored, and they equal what one
    run over the whole history would give (a day depends only on itself and earlier days).
    """
    settings = settings or AnomalySettings()
    frame = _complete_calendar(to_pandas(daily_metrics), earlier.first_days if earlier else None)
    scored = score_series(_long_format(frame, settings.metrics), settings, earlier=earlier)
    if scored.empty:
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    scored["driver"] = drivers(scored)
    scored["segment_shares"] = segment_shares(scored)
    scored["explanation"] = explanations(scored, settings, MAX_RUN_DAYS)
    return scored[ANOMALY_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class Earlier:
    """What scoring days from `score_from` on needs from the days before it.

    - `rows`: stored rows (ROW_KEY, FEATURES, `history_days`, `direction`, `run_day`) of the
      TRAIN_DAYS days before `score_from`: the forest's training rows, and where runs continue.
    - `offsets`: per series key, how many of its rows come before the first day of the
      `daily_metrics` frame given (its `history_days` start there).
    - `first_days`: per (dimension, segment), its first day in `daily_metrics`: the calendar
      of a segment is completed from there, not from the first day of the frame given.
    """

    score_from: pd.Timestamp
    rows: pd.DataFrame
    offsets: dict[tuple[str, str, str], int]
    first_days: dict[tuple[str, str], pd.Timestamp]


def score_series(
    long: pd.DataFrame,
    settings: AnomalySettings | None = None,
    period: int = 7,
    earlier: Earlier | None = None,
) -> pd.DataFrame:
    """Score long-format series: `metric_date, metric, dimension, segment, value` (+ `volume`:
    the users behind a rate, the orders behind revenue).

    Each (metric, dimension, segment) must be a complete regular series, one row per step.
    `period` is the seasonal cycle in steps (7 for days; the benchmark scores hours with 24).
    Metric names outside CONTRACT §3 are scored as plain numbers: no noise floor, no relative
    change rule. Returns the input with features, `score`, `is_anomaly` and friends; with
    `earlier`, only the rows from `earlier.score_from` on.
    """
    settings = settings or AnomalySettings()
    long = long.copy()
    if "volume" not in long.columns:
        long["volume"] = np.nan
    if long.empty:
        return long
    long["metric_date"] = pd.to_datetime(long["metric_date"]).astype("datetime64[ns]")
    long = long.sort_values(ROW_KEY, kind="stable").reset_index(drop=True)
    features = _features(long, period, earlier.offsets if earlier else {})
    before = _empty_earlier(features)
    if earlier is not None:
        features = features[features["metric_date"] >= earlier.score_from].reset_index(drop=True)
        before = earlier.rows
    if features.empty:
        return features
    features["score"], features["threshold"] = _forest_scores(
        features, before, settings.contamination
    )
    return _flag(features, settings, before)


def _empty_earlier(features: pd.DataFrame) -> pd.DataFrame:
    return features.iloc[:0].reindex(columns=[*ROW_KEY, *FEATURES, "history_days", "run_day"])


# --- input shaping -----------------------------------------------------------------------------


def to_pandas(frame: Any) -> pd.DataFrame:
    """A pandas or polars (or pyarrow) frame as pandas."""
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):  # polars, pyarrow
        return frame.to_pandas()
    raise EventpulseError(f"Expected a pandas or polars DataFrame, got {type(frame).__name__}.")


def _complete_calendar(
    frame: pd.DataFrame, first_days: dict[tuple[str, str], pd.Timestamp] | None = None
) -> pd.DataFrame:
    """One row per segment and day, from the segment's first day to the last day of the data.

    A missing row means no activity in that segment that day (CONTRACT §3 keeps only segment
    rows with events): counts and revenue are 0, the rate undefined. Days before a segment's
    first row are not filled: a new segment is young, not dead. `first_days`: each segment's
    first day in the whole table, when `frame` holds only recent days (filled from the later
    of that day and the frame's first day).
    """
    missing = [c for c in DAILY_METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise EventpulseError(
            f"daily_metrics lacks column {missing[0]!r}; rebuild it (CONTRACT §3 daily_metrics)."
        )
    frame = frame[DAILY_METRIC_COLUMNS].copy()
    frame["metric_date"] = (
        pd.to_datetime(frame["metric_date"]).dt.normalize().astype("datetime64[ns]")
    )
    if frame.empty:
        return frame
    first, last = frame["metric_date"].min(), frame["metric_date"].max()
    filled = []
    for (dimension, segment), rows in frame.groupby(["dimension", "segment"]):
        start = rows["metric_date"].min()
        if first_days and (dimension, segment) in first_days:
            start = max(first, min(start, pd.Timestamp(first_days[dimension, segment])))
        days = pd.date_range(start, last, freq="D", name="metric_date")
        rows = rows.drop_duplicates("metric_date").set_index("metric_date").reindex(days)
        rows["dimension"], rows["segment"] = dimension, segment
        filled.append(rows.reset_index())
    out = pd.concat(filled, ignore_index=True)
    amounts = [name for name in METRIC_NAMES if name not in RATES]
    out[amounts] = out[amounts].astype(float).fillna(0.0)
    out[RATES] = out[RATES].astype(float)
    return out


def _long_format(frame: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """One row per (day, metric, segment), with the volume behind the metric."""
    parts = []
    for metric in metrics:
        volume = VOLUMES.get(metric)
        part = frame[["metric_date", "dimension", "segment"]].copy()
        part["metric"] = metric
        part["value"] = frame[metric].astype(float)
        part["volume"] = frame[volume].astype(float) if volume else np.nan
        if KINDS.get(metric) == "rate":
            # No users, no rate: such a day is left out, not scored as a 0% rate.
            part = part[part["volume"] > 0]
        parts.append(part)
    columns = [*ROW_KEY, "value", "volume"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


# --- features of one series (past only) -------------------------------------------------------


def _features(
    long: pd.DataFrame, period: int, offsets: dict[tuple[str, str, str], int]
) -> pd.DataFrame:
    """`long` (in ROW_KEY order) with every series' baseline and features as new columns.

    Each series is computed on numpy arrays and written into whole-frame columns, which are
    added once: a DataFrame per series costs more than its arithmetic in a daily run."""
    values = long["value"].to_numpy(dtype=float)
    volumes = long["volume"].to_numpy(dtype=float)
    phases = long["metric_date"].dt.day_of_week.to_numpy() if period == 7 else None
    columns: dict[str, np.ndarray] = {}
    grouped = []
    for key, rows in long.groupby(SERIES_KEY, sort=True).indices.items():
        found = _series_features(key[0], values[rows], volumes[rows], period, offsets.get(key, 0))
        if phases is not None:
            found["f_phase"] = phases[rows].astype(float)
        for name, column in found.items():
            columns.setdefault(name, np.empty(len(long), dtype=column.dtype))[rows] = column
        grouped.append(rows)
    kept = np.sort(np.concatenate(grouped)) if grouped else np.array([], dtype=int)
    # A row whose key has a missing part belongs to no series: left out, as groupby leaves it.
    return long.assign(**columns, period=period).iloc[kept].reset_index(drop=True)


def _series_features(
    metric: str, y: np.ndarray, volume: np.ndarray, period: int, offset: int = 0
) -> dict[str, np.ndarray]:
    """Baseline and features of one complete series (its values and volumes in day order),
    each day from strictly earlier days.

    `offset`: the series' rows before the first one given (its recent days only are given)."""
    order_value_z = np.full(y.shape[0], np.nan)
    if KINDS.get(metric) == "amount":
        order_value_z = _order_value_z(y, volume)
        # The typical order count, not today's: an outage zeroes today's orders and would
        # otherwise widen its own noise floor.
        volume = _nanmedian(_past(volume, period))
    steps = offset + np.arange(y.shape[0])
    level, expected = _baseline(y, period, steps)
    floor = _noise_floor(metric, expected, y, volume)
    g = _stabilise(metric, y)

    # Deviation from expected, in robust units of the past residuals.
    residual = g - _stabilise(metric, expected)
    sigma = _scale(metric, _widened_spread(_past(residual, SPREAD_DAYS)), floor, expected)
    # Deviation from the rolling median, in MAD units of the past four weeks of values.
    level_sigma = _scale(metric, _robust_spread(_past(g, SPREAD_DAYS)), floor, level)
    # Day-over-day change, in MAD units of the past four weeks of changes.
    change = g - np.concatenate([[np.nan], g[:-1]])
    change_floor = floor * math.sqrt(2)
    change_sigma = _scale(metric, _robust_spread(_past(change, SPREAD_DAYS)), change_floor, level)
    # Ratio to the median of the last 4 same weekdays.
    same_weekdays = _nanmedian(_lags(y, period, SEASON_WEEKS))
    offset = RELATIVE_FLOOR * np.abs(np.nan_to_num(level)) + 1e-9
    log_ratio = np.log((np.abs(y) + offset) / (np.abs(np.nan_to_num(same_weekdays)) + offset))

    centre = _stabilise(metric, expected)
    return {
        "last_week": _lags(y, period, 1)[:, 0],
        "median_4w": _nanmedian(_past(y, SPREAD_DAYS)),
        "expected": expected,
        "expected_low": _unstabilise(metric, centre - BAND_Z * sigma),
        "expected_high": _unstabilise(metric, centre + BAND_Z * sigma),
        "history_days": steps,
        "volume": volume,
        "f_ratio": np.where(np.isnan(same_weekdays), 0.0, log_ratio),
        "f_z_expected": residual / sigma,
        "f_z_level": (g - _stabilise(metric, level)) / level_sigma,
        "f_z_change": np.nan_to_num(change / change_sigma),
        "order_value_z": order_value_z,
        # The day of the week for daily series (overwritten by the caller), else the step.
        "f_phase": np.asarray(steps % period, dtype=float),
    }


def _order_value_z(amount: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Each day's average order value (amount / orders) against the past SPREAD_DAYS days',
    on the log scale, in robust units: the MAD of the past days' log order values, never below
    the sampling noise of a mean of today's orders, sqrt(log(1 + AMOUNT_CV^2 / orders)) (a
    lognormal's log spread at that coefficient of variation). NaN without orders today or with
    fewer than ORDER_VALUE_DAYS past days with orders."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_value = np.where(
            (orders > 0) & (amount > 0), np.log(amount / np.where(orders > 0, orders, 1.0)), np.nan
        )
    past = _past(log_value, SPREAD_DAYS)
    spread = _robust_spread(past, min_points=ORDER_VALUE_DAYS)
    floor = np.sqrt(np.log1p(AMOUNT_CV**2 / np.maximum(np.nan_to_num(orders), 1.0)))
    with np.errstate(invalid="ignore"):
        z = (log_value - _nanmedian(past)) / np.fmax(np.nan_to_num(spread), floor)
    return np.where(np.isnan(spread), np.nan, z)


def _baseline(y: np.ndarray, period: int, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level and expected value of each day, from strictly earlier days.

    Weekday factors: for each weekday, the median of value / (median of the 7 days before it)
    over its last 4 occurrences, normalised so the seven average 1 (none before the third
    week: the first index needs a full week before it). Level: the median of the last 7 days with today's factors divided out.
    Expected: level x today's factor.
    Normalising keeps growth out of the factors (while a product ramps up every day is above
    last week's median, which is no weekday pattern) and cancels the raw median's weekday bias;
    dividing the factors out of the level keeps it honest after a multi-day incident (the
    median of 7 raw days with 3 crash days in it would land on a quiet weekend day).
    """
    weekly = _nanmedian(_past(y, period))
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(weekly > 0, y / weekly, np.nan)
    index[steps < period] = np.nan  # a median of less than a full week carries a weekday bias
    # Row t: the factors of days t - period .. t - 1 (NaN where that day has none yet).
    medians = _past(_same_weekday_medians(index, period), period)
    mean = np.ascontiguousarray(medians).mean(axis=1)  # each row summed as its own mean() sums
    with np.errstate(invalid="ignore"):
        has_factors = (np.arange(y.shape[0]) >= period) & ~np.isnan(medians).any(axis=1)
        has_factors &= mean > 0
    past = _past(y, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = medians / mean[:, None]
        deseasoned = np.where(factors > 0, past / factors, np.nan)
    adjusted = np.where(has_factors[:, None], deseasoned, past)
    level = _nanmedian(adjusted)
    # Day t has the weekday of day t - period, the first of the window.
    expected = level * np.where(has_factors, factors[:, 0], 1.0)
    return level, expected


def _same_weekday_medians(index: np.ndarray, period: int) -> np.ndarray:
    """Per day, the median of its weekday index and those of its last SEASON_WEEKS - 1 same
    weekdays (NaN with fewer than MIN_SEASON_WEEKS of them)."""
    same = _lags(index, period, SEASON_WEEKS - 1)
    medians = _nanmedian(np.column_stack([index, same]))
    enough = np.sum(~np.isnan(np.column_stack([index, same])), axis=1) >= MIN_SEASON_WEEKS
    return np.where(enough, medians, np.nan)


def _nanmedian(windows: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN, NaN for an all-NaN row (without numpy's warning), with
    np.nanmedian's arithmetic (the middle value, or the two middle values' sum halved): the
    same to the bit, without its masked-array overhead or a Python loop over rows."""
    ordered = np.sort(windows, axis=1)  # NaN sorts last
    count = np.sum(~np.isnan(windows), axis=1)
    rows = np.arange(windows.shape[0])
    upper = ordered[rows, np.minimum(count // 2, windows.shape[1] - 1)]
    lower = ordered[rows, np.maximum(count - 1, 0) // 2]
    median = np.where(count % 2 == 1, upper, (lower + upper) / 2)
    return np.where(count > 0, median, np.nan)


def _stabilise(metric: str, values: np.ndarray) -> np.ndarray:
    """The scale on which sampling noise has one size whatever the level.

    Counts and revenue: Anscombe's sqrt(x + 3/8) (Poisson noise 0.5), so a drop from 15 to 0
    reads as the 6-sigma event it is, not the "-100%, 2 sigma" of a relative scale. Rates:
    arcsin(sqrt(p)) (binomial noise 1 / (2 sqrt(n))). Other metrics: as they are.
    """
    if KINDS.get(metric) in ("count", "amount"):
        return np.sqrt(np.maximum(values, 0.0) + 0.375)
    if KINDS.get(metric) == "rate":
        return np.arcsin(np.sqrt(np.clip(values, 0.0, 1.0)))
    return values


def _unstabilise(metric: str, values: np.ndarray) -> np.ndarray:
    if KINDS.get(metric) in ("count", "amount"):
        return np.maximum(np.maximum(values, 0.0) ** 2 - 0.375, 0.0)
    if KINDS.get(metric) == "rate":
        return np.sin(np.clip(values, 0.0, np.pi / 2)) ** 2
    return values


def _noise_floor(
    metric: str, expected: np.ndarray, value: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Sampling noise on the stabilised scale, widened for the baseline's own error.

    `volume`: the users behind a rate (today's) or the typical orders behind revenue.
    """
    kind = KINDS.get(metric)
    if kind == "count":
        sd = np.full(expected.shape, 0.5)
    elif kind == "rate":
        sd = 0.5 / np.sqrt(np.maximum(np.nan_to_num(volume), 1.0))
    elif kind == "amount":
        # A sum over orders: on the sqrt scale its noise is sqrt(order value * (1 + cv^2)) / 2.
        # Where no revenue is expected the order value is today's, so revenue appearing from
        # nothing is not infinitely surprising.
        expected = np.abs(np.nan_to_num(expected))
        amount = np.where(expected > 0, expected, np.abs(np.nan_to_num(value)))
        order_value = amount / np.maximum(np.nan_to_num(volume), 1.0)
        sd = np.sqrt(order_value * (1 + AMOUNT_CV**2)) / 2
    else:
        return np.zeros(expected.shape)
    return sd * BASELINE_ERROR


def _scale(metric: str, spread: np.ndarray, floor: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A robust spread, never below the noise floor, ±2% of the reference or an epsilon."""
    reference = np.abs(np.nan_to_num(reference))
    relative = np.abs(
        _stabilise(metric, reference * (1 + RELATIVE_FLOOR)) - _stabilise(metric, reference)
    )
    return np.fmax.reduce([np.nan_to_num(spread), floor, relative, np.full(floor.shape, 1e-9)])


def _widened_spread(windows: np.ndarray) -> np.ndarray:
    """The robust spread of each row, widened by sqrt(1 + k / n) while the past is short: a
    MAD of eight residuals is often far too small, and a young series would flag its noise."""
    n = np.sum(~np.isnan(windows), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _robust_spread(windows, min_points=3) * np.sqrt(1 + SMALL_SAMPLE_POINTS / n)


def _robust_spread(windows: np.ndarray, min_points: int = 5) -> np.ndarray:
    """MAD-based standard deviation of each row; NaN with fewer than `min_points` values."""
    centre = _nanmedian(windows)
    spread = MAD_TO_SIGMA * _nanmedian(np.abs(windows - centre[:, None]))
    spread[np.sum(~np.isnan(windows), axis=1) < min_points] = np.nan
    return spread


def _past(values: np.ndarray, width: int) -> np.ndarray:
    """Row t holds values[t - width .. t - 1], NaN before the start: strictly the past."""
    padded = np.concatenate([np.full(width, np.nan), values])
    return sliding_window_view(padded, width)[:-1]


def _lags(values: np.ndarray, period: int, count: int) -> np.ndarray:
    """Column k - 1 holds values[t - k * period], k = 1..count (NaN before the start)."""
    columns = []
    for k in range(1, count + 1):
        column = np.full(values.shape[0], np.nan)
        if k * period < values.shape[0]:
            column[k * period :] = values[: -k * period]
        columns.append(column)
    return np.column_stack(columns)


# --- the forest and the decision ---------------------------------------------------------------


def _forest_scores(
    features: pd.DataFrame, earlier: pd.DataFrame, contamination: float | str
) -> tuple[np.ndarray, ...]:
    """Expanding window: day d is scored by a forest fitted on every series' days before d
    (the rows of `earlier`, then those of `features`), at most TRAIN_DAYS back.

    Pooling the series works because every feature is in the series' own units, and it gives
    a young series a model from its first weeks. A day with nothing to compare scores 0.
    The pool is in ROW_KEY order whichever run stored it: the forest's subsample, hence its
    scores, depend on the order of its training rows.
    """
    # Imported here: scikit-learn (with SciPy) takes ~0.9 s to import, which every process that
    # loads the definitions (each CLI command, each run's step processes) paid before any
    # scoring; only a run that scores days needs it.
    from assets.anomalies.forest import fit_forest

    pool = pd.concat(
        [
            earlier[[*ROW_KEY, *FEATURES, "history_days"]],
            features[[*ROW_KEY, *FEATURES, "history_days"]],
        ],
        ignore_index=True,
    )
    pool["metric_date"] = pd.to_datetime(pool["metric_date"]).astype("datetime64[ns]")
    pool = pool.sort_values(ROW_KEY, kind="stable").reset_index(drop=True)
    x_pool = _feature_matrix(pool)
    pool_dates = pool["metric_date"].to_numpy()
    trainable = ~np.isnan(x_pool).any(axis=1) & (
        pool["history_days"].to_numpy() >= MIN_TRAIN_HISTORY
    )
    x = _feature_matrix(features)
    dates = features["metric_date"].to_numpy()
    usable = ~np.isnan(x).any(axis=1)
    scores = np.zeros(len(features))
    thresholds = np.full(len(features), np.nan)
    window = np.timedelta64(TRAIN_DAYS, "D")
    for day in np.unique(dates):
        rows = np.flatnonzero((dates == day) & usable)
        train = trainable & (pool_dates < day) & (pool_dates >= day - window)
        if rows.size == 0 or train.sum() < MIN_TRAIN_ROWS:
            continue
        forest = fit_forest(x_pool[train], N_ESTIMATORS, RANDOM_STATE)
        scores[rows] = forest.score(x[rows])
        # A numeric contamination puts the line at that quantile of the training scores.
        thresholds[rows] = (
            AUTO_SCORE_LINE
            if contamination == "auto"
            else forest.training_line(x_pool[train], contamination)
        )
    return np.clip(scores, 0.0, 1.0), thresholds


def _feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """The forest splits uniformly between a feature's min and max: without a signed-log
    squeeze one outage at -40 sigma would put every moderate deviation in the same leaf."""
    x = features[FEATURES].to_numpy(dtype=float)
    x[:, 1:4] = np.arcsinh(np.clip(x[:, 1:4], -FEATURE_CLIP, FEATURE_CLIP))
    return x


def _flag(features: pd.DataFrame, settings: AnomalySettings, earlier: pd.DataFrame) -> pd.DataFrame:
    out = features
    value, expected = out["value"].to_numpy(), out["expected"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(expected != 0, value / expected - 1.0, np.nan)
    out["relative_change"] = relative
    out["z_score"] = out["f_z_expected"]
    out["direction"] = np.where(
        np.isnan(expected), None, np.where(value >= expected, "spike", "dip")
    )
    history = out["history_days"].to_numpy()
    expected_z = out["f_z_expected"].to_numpy()
    # Until half the spread window is there the level's spread is too rough (or, under five
    # days, only the 2% floor) to call anything extreme.
    level_z = np.where(history >= LEVEL_HISTORY_DAYS, out["f_z_level"].to_numpy(), 0.0)
    level_way = np.sign(level_z) == np.sign(expected_z)
    extreme = (np.abs(level_z) >= EXTREME_LEVEL_Z) & level_way
    order_z = np.nan_to_num(out["order_value_z"].to_numpy(dtype=float))
    order_value = (np.abs(order_z) >= ORDER_VALUE_Z) & (np.sign(order_z) == np.sign(expected_z))
    # `min_history_days` is the warm-up: however far out, a younger day is scored, not flagged.
    out["flaggable"] = (history >= settings.min_history_days) & _enough_volume(out)
    forest = (out["score"] >= out["threshold"].fillna(np.inf)).to_numpy()
    unusual = forest | extreme | order_value
    out["score"] = np.fmax.reduce(
        [out["score"].to_numpy(), level_score(level_z), order_value_score(order_z)]
    )
    # A relative change means something only for ratio-scale business metrics (a "10% warmer"
    # day is not a thing); moving off zero is material however small the base.
    business = out["metric"].isin(list(METRIC_NAMES))
    min_change = np.where(business, MIN_RELATIVE_CHANGE, 0.0)
    shift = extreme | (forest & (np.abs(level_z) >= STRONG_LEVEL_Z) & level_way)
    far = (
        (np.abs(expected_z) >= MIN_ABS_Z)
        | order_value
        | (shift & (np.abs(expected_z) >= EXTREME_EXPECTED_Z))
    )
    changed = np.abs(np.nan_to_num(relative, nan=np.inf)) >= min_change
    kept = ["spike", "dip"] if settings.directions == "both" else [settings.directions]
    eligible = (out["direction"].isin(kept) & out["flaggable"]).to_numpy()
    unusual &= far & changed
    # What makes the next day of a run a candidate too (step 4).
    next_day = np.abs(expected_z) >= NEXT_DAY_Z
    out["continues"] = continues = forest & next_day & changed & eligible
    out["run_day"], candidate = _run_days(out, unusual & eligible, continues, earlier)
    out["unusual"] = unusual | candidate
    out["is_anomaly"] = candidate & (out["run_day"] <= MAX_RUN_DAYS)
    return out


def line_score(z: np.ndarray, line: float) -> np.ndarray:
    """A deviation of `z` robust units as a score in 0..1 of the forest's form 2^(-depth / c):
    2^(-k * line / |z|), with k such that |z| = line scores exactly AUTO_SCORE_LINE; 0 at
    |z| = 0 (or NaN), towards 1 as |z| grows."""
    k = -math.log2(AUTO_SCORE_LINE)
    z = np.abs(np.nan_to_num(np.asarray(z, dtype=float)))
    with np.errstate(divide="ignore"):
        return np.where(z > 0, np.exp2(-k * line / z), 0.0)


def level_score(level_z: np.ndarray) -> np.ndarray:
    """A deviation from the level as a score: `line_score` at EXTREME_LEVEL_Z (10 units: 0.77)."""
    return line_score(level_z, EXTREME_LEVEL_Z)


def order_value_score(order_z: np.ndarray) -> np.ndarray:
    """An order-value deviation as a score: `line_score` at ORDER_VALUE_Z (0 where there is no
    order value)."""
    return line_score(order_z, ORDER_VALUE_Z)


def _enough_volume(frame: pd.DataFrame) -> pd.Series:
    """Rates need enough users that day and expected conversions; the other metrics pass
    (their noise floors already keep small numbers quiet)."""
    users = frame["volume"].fillna(0.0)
    conversions = frame["expected"].fillna(0.0) * users
    enough = (users >= MIN_RATE_USERS) & (conversions >= MIN_RATE_EVENTS)
    return ~frame["metric"].isin(RATES) | enough


def _run_days(
    frame: pd.DataFrame, candidate: np.ndarray, continues: np.ndarray, earlier: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(run day, candidate) of every row: 1, 2, 3... along consecutive candidate days of a
    series in one direction, else 0, continuing the run of the series' last row in `earlier`.
    A row where `continues` holds is a candidate too when the row before it is one in its
    direction. (`frame` is sorted by date, so each series' rows come in date order.)"""
    run = np.zeros(len(frame), dtype=int)
    candidate = candidate.copy()
    start: dict[tuple, tuple[int, Any]] = {}
    if not earlier.empty:
        last = earlier.sort_values("metric_date", kind="stable").groupby(SERIES_KEY).tail(1)
        for *key, run_day, direction in last[[*SERIES_KEY, "run_day", "direction"]].itertuples(
            index=False, name=None
        ):
            if pd.notna(run_day) and run_day > 0:
                start[tuple(key)] = (int(run_day), direction)
    rows = frame[SERIES_KEY + ["direction"]].assign(
        candidate=candidate, continues=continues, row=np.arange(len(frame))
    )
    for key, series in rows.groupby(SERIES_KEY, sort=False):
        length, previous = start.get(key, (0, None))
        for row, hit, goes_on, direction in series[
            ["row", "candidate", "continues", "direction"]
        ].itertuples(index=False, name=None):
            hit = hit or (goes_on and previous is not None and direction == previous)
            length = length + 1 if hit and direction == previous else int(hit)
            previous = direction if hit else None
            run[row] = length
            candidate[row] = hit
    return run, candidate
