"""The NAB verdict of `benchmarks.anomaly_bench` is against the better simple baseline (rolling
z-score, raw IsolationForest) only; the STL residual test is compared on its own (issue 18)."""

from __future__ import annotations

from typing import Any

from benchmarks.anomaly_bench import _versus_baselines, versus_baselines


def _row(ours: float, z3: float, forest: float, stl: float) -> dict[str, Any]:
    return {
        "eventpulse": {"f1": ours},
        "rolling_z3": {"f1": z3},
        "raw_iforest": {"f1": forest},
        "stl_residual": {"f1": stl},
    }


REAL = {
    # STL beats everyone here: the verdict must still be against z3 (0.5), a tie.
    "stl_best": _row(0.5, 0.5, 0.2, 0.9),
    "forest_best": _row(0.3, 0.1, 0.4, 0.0),
    "ours_best": _row(0.8, 0.6, 0.7, 0.8),
}


def test_verdict_is_against_the_better_simple_baseline_only() -> None:
    versus = versus_baselines(REAL)
    series = versus["series"]
    assert (series["stl_best"]["best_baseline"], series["stl_best"]["verdict"]) == (
        "rolling_z3",
        "tied",
    )
    assert (series["forest_best"]["best_baseline"], series["forest_best"]["verdict"]) == (
        "raw_iforest",
        "worse",
    )
    assert series["ours_best"]["verdict"] == "better"
    assert versus["versus_baselines"] == {"better": 1, "tied": 1, "worse": 1}


def test_stl_is_compared_apart() -> None:
    versus = versus_baselines(REAL)
    assert [versus["series"][name]["verdict_established"] for name in REAL] == [
        "worse",
        "better",
        "tied",
    ]
    assert versus["versus_stl_residual"] == {"better": 1, "tied": 1, "worse": 1}
    lines = "\n".join(_versus_baselines(versus))
    assert "established: STL" in lines
    assert "below on 1 (forest_best)" in lines
    assert "wins on 1 series (forest_best)" in lines
    assert "loses on 1 (stl_best)" in lines
