"""NAB's own window-based score as the anomaly benchmark computes it on daily flags
(`benchmarks.anomaly_bench.nab_score`), against the numbers worked out by hand from NAB's
definition: standard profile (true positive 1.0, false positive 0.11, missed window 1.0), the
scaled sigmoid 2 / (1 + e^(5x)) - 1 of a flag's position, 15% probation, normalised per
series so that no flags score 0 and a flag on each window's first day scores 100."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.anomaly_bench import nab_score

DAYS = pd.date_range("2020-01-01", periods=40, freq="D")
# Overlaps days 19, 20 and 21 (2020-01-20 .. 2020-01-22): a window three days wide.
WINDOW = (pd.Timestamp("2020-01-20 06:00"), pd.Timestamp("2020-01-22 05:00"))


def _sigmoid(x: float) -> float:
    return 2 / (1 + math.exp(5 * x)) - 1


def _flags(*days: int) -> pd.Series:
    flags = pd.Series(False, index=DAYS)
    flags.iloc[list(days)] = True
    return flags


def _normalised(raw: float, windows: int = 1) -> float:
    return 100 * (raw + windows) / (2 * windows)


def test_no_flags_score_zero_and_a_flag_on_the_first_day_scores_a_hundred() -> None:
    assert nab_score(_flags(), [WINDOW]) == 0.0
    assert nab_score(_flags(19), [WINDOW]) == 100.0


def test_a_later_flag_in_the_window_earns_less_and_only_the_best_counts() -> None:
    middle = _sigmoid(-2 / 3) / _sigmoid(-1)  # position -(21 - 20 + 1) / 3
    assert nab_score(_flags(20), [WINDOW]) == pytest.approx(_normalised(middle), abs=0.05)
    assert nab_score(_flags(20, 21), [WINDOW]) == pytest.approx(_normalised(middle), abs=0.05)


def test_false_flags_cost_the_full_weight_before_a_window_and_less_just_after_it() -> None:
    before = nab_score(_flags(10, 19), [WINDOW])
    assert before == pytest.approx(_normalised(1 - 0.11), abs=0.05)
    # Two window lengths past the window's last day (distance 4 over width - 1 = 2).
    after = nab_score(_flags(19, 25), [WINDOW])
    assert after == pytest.approx(_normalised(1 + 0.11 * _sigmoid(2.0)), abs=0.05)
    just_after = nab_score(_flags(19, 22), [WINDOW])  # distance 1 / 2: a milder cost
    assert just_after == pytest.approx(_normalised(1 + 0.11 * _sigmoid(0.5)), abs=0.05)
    assert after < just_after < 100.0


def test_probation_days_are_not_scored_and_a_window_inside_them_does_not_apply() -> None:
    assert nab_score(_flags(2), [WINDOW]) == 0.0  # day 2 < 15% of 40 days: not counted
    early = (pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03"))
    assert nab_score(_flags(1), [early]) is None
    assert nab_score(_flags(19), []) is None
