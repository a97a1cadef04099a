"""What the scorer's flag lines trade: NAB against the hidden-case proxies, side by side.

`python -m benchmarks.anomaly_tradeoffs` (part of `make bench`) writes
benchmarks/results/anomaly_tradeoffs.md and .json.

The data of `benchmarks.anomaly_bench` (20 NAB real series by day, the artificialNoAnomaly series
by hour, the demo and the synthetic generator, 5 seeds each) is scored once; then each variant
of the flag lines (`MIN_ABS_Z`, `AUTO_SCORE_LINE`, `EXTREME_LEVEL_Z`, `ORDER_VALUE_Z`,
`EXTREME_EXPECTED_Z`, `STRONG_LEVEL_Z`, `NEXT_DAY_Z` of `assets.anomalies.scoring`) decides
the flags again from the same features and forest scores (the lines do not change either). Per variant: NAB series
better / tied / worse than the best simple baseline (rolling z-score, raw IsolationForest) by
F1 (their F1 from benchmarks/results/anomaly_bench.json, which `anomaly_bench` writes first in
`make bench`),
false flags on artificialNoAnomaly, and the worst seed's precision, recall and ROC AUC on each
generator (the hidden cases need >= 0.8, >= 0.8 and >= 0.9). It answers "would a more sensitive
line win the NAB rows the scorer loses?" with the cost in product-data precision.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from assets.anomalies import scoring
from assets.anomalies.evaluation import evaluate_anomalies
from benchmarks import anomaly_bench as bench
from pipelines.errors import EventpulseError

RESULTS = Path(__file__).resolve().parent / "results"
# name -> the scoring constants it changes (the first is the scorer as shipped)
VARIANTS: dict[str, dict[str, float]] = {
    "as shipped": {},
    "no extreme-level rule (the scorer before)": {"EXTREME_LEVEL_Z": math.inf},
    "extreme level at 4 sd": {"EXTREME_LEVEL_Z": 4.0},
    "extreme level at 6 sd": {"EXTREME_LEVEL_Z": 6.0},
    "far from expected from 3.0 sd": {"MIN_ABS_Z": 3.0},
    "far from expected from 2.75 sd": {"MIN_ABS_Z": 2.75},
    "forest line 0.55": {"AUTO_SCORE_LINE": 0.55},
    # the scorer-5 components one at a time (step 4 of scoring's docstring)
    "without the order-value rule": {"ORDER_VALUE_Z": math.inf},
    "extreme level needs 3.25 sd from expected (not 2.5)": {"EXTREME_EXPECTED_Z": 3.25},
    "extreme level needs 2.0 sd from expected": {"EXTREME_EXPECTED_Z": 2.0},
    # the scorer-6 components
    "no strong-level rule (scorer 5)": {"STRONG_LEVEL_Z": math.inf},
    "strong level at 4.0": {"STRONG_LEVEL_Z": 4.0},
    "strong level at 4.5": {"STRONG_LEVEL_Z": 4.5},
    "no next-day rule (scorer 5)": {"NEXT_DAY_Z": math.inf},
    "next day at 2.25 sd": {"NEXT_DAY_Z": 2.25},
    "next day at 2.0 sd": {"NEXT_DAY_Z": 2.0},
    "neither (scorer 5)": {"STRONG_LEVEL_Z": math.inf, "NEXT_DAY_Z": math.inf},
}
BASELINES = bench.SIMPLE_BASELINES


def main() -> None:
    started = time.perf_counter()
    cases = scored_cases()
    results = {"variants": {name: evaluate(cases, changes) for name, changes in VARIANTS.items()}}
    results["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "anomaly_tradeoffs.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "anomaly_tradeoffs.md").write_text(markdown(results))
    print(markdown(results))


def scored_cases() -> dict[str, Any]:
    """Every case of anomaly_bench scored once, kept as the input of the flag decision."""
    root = bench.nab_dir()
    baselines = _baseline_results()
    with _captured_flag_inputs() as captured:
        nab = {}
        for name, how in bench.NAB_SERIES.items():
            path = bench._nab_file(root, name)
            days = bench.rolled_up(path, how, "D")
            bench.eventpulse_flags(days)
            best = max(baselines[name][detector]["f1"] for detector in BASELINES)
            nab[name] = (days.index, bench._nab_windows(root, path), captured.pop(), best)
        quiet = []
        for path in sorted((root / "data" / bench.NO_ANOMALY_CATEGORY).glob("*.csv")):
            bench.eventpulse_flags(bench.rolled_up(path, "mean", "h"), period=24)
            quiet.append(captured.pop())
        labelled = []
        for kind, make in (("demo", bench.demo_metrics), ("synthetic", bench.synthetic_metrics)):
            for seed in bench.DEMO_SEEDS:
                frame, labels = make(seed)
                scoring.score_anomalies(frame)
                labelled.append((kind, labels, captured.pop()))
    return {"nab": nab, "quiet": quiet, "labelled": labelled}


def _baseline_results() -> dict[str, Any]:
    path = RESULTS / "anomaly_bench.json"
    if not path.exists():
        raise EventpulseError(
            f"{path} is missing; run `python -m benchmarks.anomaly_bench` first (make bench does)."
        )
    return json.loads(path.read_text())["nab"]["real"]


@contextmanager
def _captured_flag_inputs() -> Iterator[list[tuple]]:
    captured: list[tuple] = []
    flag = scoring._flag

    def capture(features: pd.DataFrame, settings: Any, earlier: pd.DataFrame) -> pd.DataFrame:
        captured.append((features.copy(), settings, earlier))
        return flag(features, settings, earlier)

    scoring._flag = capture
    try:
        yield captured
    finally:
        scoring._flag = flag


def evaluate(cases: dict[str, Any], changes: dict[str, float]) -> dict[str, Any]:
    with _constants(changes):
        line = changes.get("AUTO_SCORE_LINE")

        def decide(case: tuple) -> pd.DataFrame:
            features = case[0].copy()
            if line is not None:  # the forest's line is set where the forest scored a row
                features.loc[features["threshold"].notna(), "threshold"] = line
            return scoring._flag(features, case[1], case[2])

        verdicts = {"better": 0, "tied": 0, "worse": 0}
        f1 = {}
        for name, (days, windows, case, baseline) in cases["nab"].items():
            flags = pd.Series(decide(case)["is_anomaly"].to_numpy(dtype=bool), index=days)
            ours = bench.window_scores(flags, windows)["f1"]
            f1[name] = ours
            verdicts["better" if ours > baseline else "tied" if ours == baseline else "worse"] += 1
        quiet = sum(int(decide(case)["is_anomaly"].sum()) for case in cases["quiet"])
        worst: dict[str, dict[str, float]] = {}
        for kind, labels, case in cases["labelled"]:
            overall = evaluate_anomalies(decide(case), labels).iloc[0]
            low = worst.setdefault(kind, {"precision": 1.0, "recall": 1.0, "roc_auc": 1.0})
            for key in low:
                low[key] = round(min(low[key], float(overall[key])), 3)
    return {"changes": changes, "nab": verdicts, "nab_f1": f1, "quiet_flags": quiet} | worst


@contextmanager
def _constants(changes: dict[str, float]) -> Iterator[None]:
    before = {name: getattr(scoring, name) for name in changes}
    for name, value in changes.items():
        setattr(scoring, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(scoring, name, value)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Anomaly flag lines: NAB against the hidden-case proxies",
        "",
        "Written by `python -m benchmarks.anomaly_tradeoffs` (part of `make bench`); method in the",
        "module docstring. NAB: the 20 real series of `anomaly_bench`, against the best simple",
        "baseline (z3, raw IF) by F1. Quiet: false flags over the five artificialNoAnomaly",
        "series scored hourly. Demo and synthetic: the worst of 5 seeds (hidden cases need P and",
        "R >= 0.8, AUC >= 0.9).",
        "",
        "| variant | NAB better / tied / worse | quiet flags | demo worst P / R / AUC | "
        "synthetic worst P / R / AUC |",
        "|---|---|---:|---|---|",
    ]
    for name, row in results["variants"].items():
        nab = row["nab"]
        demo, synthetic = row["demo"], row["synthetic"]
        lines.append(
            f"| {name} | {nab['better']} / {nab['tied']} / {nab['worse']} | {row['quiet_flags']} "
            f"| {demo['precision']:.2f} / {demo['recall']:.2f} / {demo['roc_auc']:.3f} "
            f"| {synthetic['precision']:.2f} / {synthetic['recall']:.2f} / "
            f"{synthetic['roc_auc']:.3f} |"
        )
    lines += ["", f"Run time: {results['seconds']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
