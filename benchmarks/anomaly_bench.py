"""Anomaly benchmark: NAB real series rolled up to days, demo-generator data, synthetic data.

`python -m benchmarks.anomaly_bench` (part of `make bench`) writes
benchmarks/results/anomaly_bench.md and .json.

NAB (../shared/benchmarks/nab, the Numenta Anomaly Benchmark): each series is rolled up to one
value per day and scored by the production scorer (`score_series`, default settings, period 7).
A flagged day is a true positive when it overlaps a labelled window
(labels/combined_windows.json). Per series: windows detected (at least one flagged day inside),
false-flag days (flagged days outside every window) and an event-level F1 with
precision = flagged days inside windows / flagged days, recall = windows detected / windows,
and NAB's own window-based score (`nab_score`: the standard profile, normalised per series).
The series: the four known-cause ones, and the NAB series that look like product metrics with
8 weeks of days or more (Twitter mention volumes, ad-exchange prices).
Two simple baselines run on the same days: a rolling z-score (|z| > 3 against the previous 28
days) and an IsolationForest on the raw daily values alone (sklearn defaults); the verdict per
series is against the better of the two. An established detector family, a robust STL residual
test (statsmodels), runs beside them and is compared on its own.

Demo generator: `pipelines.demo`'s simulation (the steps of `generate()` short of writing
files) gives daily metrics and its honest labels; `score_anomalies` + `evaluate_anomalies`
give the numbers the `anomaly_evaluation` asset reports, at the (date, dimension, segment)
level.

Synthetic: an independent generator (platform x channel cells, growth, a weekly pattern, Poisson
noise, the same five incident kinds with other sizes), labelled where an incident moves a
segment's expected value by 40% or more, as a check that the defaults are not fitted to one
generator.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from assets.anomalies.evaluation import evaluate_anomalies
from assets.anomalies.scoring import score_anomalies, score_series
from pipelines import demo as demo_data
from pipelines.errors import EventpulseError
from pipelines.settings import METRIC_NAMES, AnomalySettings

REPO = Path(__file__).resolve().parents[1]
NAB_DIR = REPO.parent / "shared" / "benchmarks" / "nab"
RESULTS = REPO / "benchmarks" / "results"

# How each NAB series becomes one value per day, and why.
NAB_SERIES = {
    # Passengers per half hour: the day's total is the day's demand.
    "nyc_taxi": "sum",
    # Temperatures and CPU percentages: a sum of readings means nothing; the mean is the level.
    "ambient_temperature_system_failure": "mean",
    "machine_temperature_system_failure": "mean",
    "cpu_utilization_asg_misconfiguration": "mean",
    # The NAB series that look like product metrics and give 8 weeks or more of days: mentions
    # per day (a count, like events) and ad prices (a per-click / per-mille rate).
    **{
        f"Twitter_volume_{name}": "sum"
        for name in ("AAPL", "AMZN", "CRM", "CVS", "FB", "GOOG", "IBM", "KO", "PFE", "UPS")
    },
    **{f"exchange-{n}_{kind}_results": "mean" for n in (2, 3, 4) for kind in ("cpc", "cpm")},
}
NO_ANOMALY_CATEGORY = "artificialNoAnomaly"
DEMO_SEEDS = range(1, 6)
SYNTHETIC_SEEDS = range(1, 6)
SUMMARY = ["precision", "recall", "f1", "roc_auc", "labelled", "flagged", "false_positives"]


def main() -> None:
    started = time.perf_counter()
    results = {
        "nab": nab_results(nab_dir()),
        "demo": labelled_results(demo_metrics, DEMO_SEEDS),
        "synthetic": labelled_results(synthetic_metrics, SYNTHETIC_SEEDS),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "anomaly_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "anomaly_bench.md").write_text(markdown(results))
    print(markdown(results))


# --- NAB ---------------------------------------------------------------------------------------


def nab_dir() -> Path:
    if not (NAB_DIR / "labels" / "combined_windows.json").exists():
        raise EventpulseError(
            f"NAB data not found at {NAB_DIR}: the benchmark expects ../shared/benchmarks/nab "
            "next to the repository; put the shared benchmark folder there."
        )
    return NAB_DIR


def nab_results(root: Path) -> dict[str, Any]:
    real = {}
    for name, how in NAB_SERIES.items():
        path = _nab_file(root, name)
        days = rolled_up(path, how, "D")
        windows = _nab_windows(root, path)
        real[name] = {"rollup": how, "days": len(days)} | {
            detector: window_scores(flag(days), windows) for detector, flag in DETECTORS.items()
        }
    quiet = {}
    for path in sorted((root / "data" / NO_ANOMALY_CATEGORY).glob("*.csv")):
        days = rolled_up(path, "mean", "D")
        hours = rolled_up(path, "mean", "h")
        quiet[path.stem] = {
            "days": len(days),
            "daily": {detector: int(flag(days).sum()) for detector, flag in DETECTORS.items()},
            "hours": len(hours),
            "hourly": {
                "eventpulse": int(eventpulse_flags(hours, period=24).sum()),
                "rolling_z3": int(rolling_zscore_flags(hours, window=72, min_periods=48).sum()),
                "raw_iforest": int(raw_forest_flags(hours).sum()),
                "stl_residual": int(stl_residual_flags(hours, period=24).sum()),
            },
        }
    return {"real": real, "versus": versus_baselines(real), "no_anomaly": quiet}


def rolled_up(path: Path, how: str, freq: str) -> pd.Series:
    raw = pd.read_csv(path, parse_dates=["timestamp"])
    return raw.set_index("timestamp")["value"].resample(freq).agg(how).dropna()


def eventpulse_flags(values: pd.Series, period: int = 7) -> pd.Series:
    """The production scorer on one series. Its name is no CONTRACT metric, so it is scored
    as a plain number (no sampling-noise floor, no relative-change rule). Hourly values are
    scored as consecutive steps of a 24-step cycle, warmed up for two cycles as days are for
    two weeks."""
    long = pd.DataFrame(
        {
            "metric_date": pd.date_range("2000-01-03", periods=len(values), freq="D")
            if period != 7
            else values.index,
            "metric": "value",
            "dimension": "all",
            "segment": "all",
            "value": values.to_numpy(dtype=float),
        }
    )
    settings = AnomalySettings() if period == 7 else AnomalySettings(min_history_days=2 * period)
    scored = score_series(long, settings, period=period)
    return pd.Series(scored["is_anomaly"].to_numpy(dtype=bool), index=values.index)


def rolling_zscore_flags(values: pd.Series, window: int = 28, min_periods: int = 14) -> pd.Series:
    """Baseline: |value - mean of the previous 28 days| > 3 standard deviations of them."""
    past = values.shift(1).rolling(window, min_periods=min_periods)
    z = (values - past.mean()) / past.std()
    return (z.abs() > 3).fillna(False)


def raw_forest_flags(values: pd.Series) -> pd.Series:
    """Baseline: an IsolationForest on the raw values alone, fitted on the whole series."""
    x = values.to_numpy(dtype=float).reshape(-1, 1)
    forest = IsolationForest(random_state=0).fit(x)
    return pd.Series(forest.predict(x) == -1, index=values.index)


def stl_residual_flags(
    values: pd.Series, period: int = 7, cycles: int = 8, threshold: float = 3.0
) -> pd.Series:
    """Established detector family: a seasonal-trend decomposition (statsmodels STL, robust)
    residual test. For each step, STL is fitted on the last `cycles` cycles up to and including
    it (past only, like ours); the step is flagged when its residual is more than `threshold`
    robust standard deviations (MAD) from the median of the window's earlier residuals. No flag
    before two cycles of history."""
    from statsmodels.tsa.seasonal import STL  # benchmark-only dependency

    y = values.to_numpy(dtype=float)
    flags = np.zeros(len(y), dtype=bool)
    for t in range(2 * period, len(y)):
        window = y[max(0, t - cycles * period + 1) : t + 1]
        residual = STL(window, period=period, robust=True).fit().resid
        past = residual[:-1]
        centre = np.median(past)
        spread = 1.4826 * np.median(np.abs(past - centre))
        flags[t] = spread > 0 and abs(residual[-1] - centre) > threshold * spread
    return pd.Series(flags, index=values.index)


DETECTORS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "eventpulse": eventpulse_flags,
    "rolling_z3": rolling_zscore_flags,
    "raw_iforest": raw_forest_flags,
    "stl_residual": stl_residual_flags,
}
# Issue 18's "simple baselines" (the verdict is against the better of them) and the established
# detector family, reported beside them but not counted as a baseline.
SIMPLE_BASELINES = ("rolling_z3", "raw_iforest")
ESTABLISHED = "stl_residual"


def window_scores(flags: pd.Series, windows: list[tuple[pd.Timestamp, pd.Timestamp]]) -> dict:
    """Windows detected, false-flag days and the event-level F1 of daily flags."""
    days = list(flags.index[flags.to_numpy(dtype=bool)])

    def overlaps(day: pd.Timestamp, window: tuple[pd.Timestamp, pd.Timestamp]) -> bool:
        return day <= window[1] and day + pd.Timedelta(days=1) > window[0]

    inside = [day for day in days if any(overlaps(day, w) for w in windows)]
    detected = sum(any(overlaps(day, w) for day in days) for w in windows)
    precision = len(inside) / len(days) if days else 0.0
    recall = detected / len(windows) if windows else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "windows": len(windows),
        "detected": detected,
        "flagged_days": len(days),
        "false_flag_days": len(days) - len(inside),
        "f1": round(f1, 3),
        "nab_score": nab_score(flags, windows),
        "false_days": [day.date().isoformat() for day in days if day not in inside],
    }


# NAB's "standard" application profile (numenta/NAB config/profiles.json) and probation share.
NAB_PROFILE = {"tp": 1.0, "fp": 0.11, "fn": 1.0}
NAB_PROBATION = 0.15


def nab_score(flags: pd.Series, windows: list[tuple[pd.Timestamp, pd.Timestamp]]) -> float | None:
    """NAB's own window-based score of daily flags, normalised per series: 0 for a detector
    that never flags, 100 for one that flags each window on its first day and nothing else
    (negative when false flags cost more than the detections earn). None where it does not
    apply: no labelled window after the probation period.

    As NAB's sweeper on the daily steps: a window's best flag earns tp x sigmoid(position)
    (early in the window near 1, at its last day near 0); a missed window costs fn; each
    false flag costs fp x sigmoid(distance past the previous window), the full fp before any
    window; the first 15% of steps are probation and not scored."""
    n = len(flags)
    spans = _window_spans(flags.index, windows)
    probation = min(math.floor(NAB_PROBATION * n), NAB_PROBATION * 5000)
    scored = [span for span in spans if span[1] >= probation]
    if not scored:
        return None
    best = {span: -NAB_PROFILE["fn"] for span in scored}
    false_cost = 0.0
    previous: tuple[int, int] | None = None
    for i, flagged in enumerate(flags.to_numpy(dtype=bool)):
        span = next((s for s in spans if s[0] <= i <= s[1]), None)
        if span is not None:
            width = span[1] - span[0] + 1
            weight = _scaled_sigmoid(-(span[1] - i + 1) / width) / _scaled_sigmoid(-1.0)
            if flagged and i >= probation:
                best[span] = max(best[span], NAB_PROFILE["tp"] * weight)
            if i == span[1]:
                previous = span
            continue
        if flagged and i >= probation:
            past = 3.0
            if previous is not None:
                past = (i - previous[1]) / max(previous[1] - previous[0], 1)
            false_cost += NAB_PROFILE["fp"] * _scaled_sigmoid(past)
    raw = sum(best.values()) + false_cost
    null, perfect = -NAB_PROFILE["fn"] * len(scored), NAB_PROFILE["tp"] * len(scored)
    return round(100 * (raw - null) / (perfect - null), 1)


def _scaled_sigmoid(position: float) -> float:
    """NAB's weight of a flag at a relative position: -1 a window's first step (0.987), 0 its
    last (0), 1 a window's length past it (-0.987); -1 from 3 window lengths past."""
    if position >= 3.0:
        return -1.0
    return 2 / (1 + math.exp(5 * position)) - 1


def _window_spans(
    days: pd.DatetimeIndex, windows: list[tuple[pd.Timestamp, pd.Timestamp]]
) -> list[tuple[int, int]]:
    """Each window as (first, last) position of the days it overlaps."""
    spans = []
    for start, end in windows:
        inside = np.flatnonzero((days <= end) & (days + pd.Timedelta(days=1) > start))
        if inside.size:
            spans.append((int(inside[0]), int(inside[-1])))
    return spans


def _nab_file(root: Path, name: str) -> Path:
    matches = sorted((root / "data").glob(f"*/{name}.csv"))
    if not matches:
        raise EventpulseError(f"NAB series {name}.csv is missing under {root / 'data'}.")
    return matches[0]


def _nab_windows(root: Path, path: Path) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    return [
        (pd.Timestamp(start), pd.Timestamp(end))
        for start, end in windows.get(f"{path.parent.name}/{path.name}", [])
    ]


# --- labelled daily_metrics: the demo generator and an independent synthetic one ---------------


def labelled_results(
    make: Callable[[int], tuple[pd.DataFrame, list[dict[str, Any]]]], seeds: range
) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        frame, labels = make(seed)
        overall = evaluate_anomalies(score_anomalies(frame), labels).iloc[0]
        runs.append({"seed": seed} | {key: round(float(overall[key]), 3) for key in SUMMARY})
    table = pd.DataFrame(runs)
    return {"runs": runs, "mean": {key: round(float(table[key].mean()), 3) for key in SUMMARY}}


def demo_metrics(
    seed: int, days: int = 90, users: int = 5000
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The demo generator's daily metrics and labels, by the steps of `demo_data.generate()`
    short of writing event files (the same numbers ingest + marts give, without the I/O)."""
    calendar = demo_data.Calendar(first=dt.date(2026, 1, 1), days=days)
    rng = np.random.default_rng(seed)
    anomalies = demo_data.plan_anomalies(rng, days)
    population = demo_data.simulate_users(rng, calendar, users)
    sessions = demo_data.simulate_sessions(rng, calendar, population)
    sessions, population, incidents = demo_data.inject_session_anomalies(
        rng, calendar, anomalies, sessions, population
    )
    events = demo_data.simulate_events(rng, calendar, sessions, population)
    events, _ = demo_data.inject_event_anomalies(rng, anomalies, events, incidents)
    grids = demo_data.daily_metrics(events, sessions, days)
    labels = demo_data.honest_labels(calendar, grids, anomalies)
    dates = pd.date_range(calendar.first, periods=days, freq="D")
    parts = []
    for (dimension, segment), grid in grids.items():
        part = pd.DataFrame(grid, columns=list(METRIC_NAMES)).assign(
            metric_date=dates, dimension=dimension, segment=segment
        )
        # As in the warehouse: a segment has a row only on days with activity.
        parts.append(part if dimension == "all" else part[part["active_users"] > 0])
    return pd.concat(parts, ignore_index=True), labels


PLATFORMS = {"web": 0.45, "ios": 0.30, "android": 0.25}
CHANNELS = {"organic": 0.40, "ads": 0.25, "email": 0.15, "referral": 0.12, "social": 0.08}
WEEKLY = np.array([1.0, 1.02, 1.03, 1.0, 0.95, 0.78, 0.74])  # Monday .. Sunday
LABEL_CHANGE = 0.4  # a segment's expected value moved this much: the incident is visible there


@dataclass(frozen=True)
class Incident:
    kind: str
    days: int  # how long it lasts
    activity: Callable[[str, str], float]  # (platform, channel) -> multiplier of visitors
    buying: Callable[[str, str], float] = lambda platform, channel: 1.0
    order_value: float = 1.0


INCIDENTS = (
    Incident("checkout_outage", 1, lambda p, c: 1.0, lambda p, c: 0.0 if p == "android" else 1.0),
    Incident("traffic_burst", 1, lambda p, c: 3.5 if c == "social" else 2.0),
    Incident("paused_channel", 2, lambda p, c: 0.03 if c == "ads" else 1.0),
    Incident("extreme_revenue", 1, lambda p, c: 1.0, order_value=5.0),
    Incident("app_crash", 1, lambda p, c: 0.45 if p == "ios" else 1.0),
)


def synthetic_metrics(
    seed: int, days: int = 90, users: int = 5000
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """An independent demo-like daily_metrics table and its labels."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2026-01-05", periods=days, freq="D")
    level = np.linspace(0.08, 0.2, days) * users * rng.uniform(0.8, 1.2)  # growing actives
    starts = rng.choice(np.arange(21, days - 3, 3), size=len(INCIDENTS), replace=False)
    on_day = {
        int(s) + k: inc for inc, s in zip(INCIDENTS, starts, strict=True) for k in range(inc.days)
    }
    cells = []
    for platform, p_share in PLATFORMS.items():
        for channel, c_share in CHANNELS.items():
            conversion = 0.05 * rng.uniform(0.7, 1.3)
            for t, date in enumerate(dates):
                incident = on_day.get(t)
                mean = level[t] * p_share * c_share * WEEKLY[date.day_of_week]
                cells.append(_cell(rng, date, platform, channel, mean, conversion, incident))
    frame = _roll_up(pd.DataFrame(cells))
    return frame, _synthetic_labels(dates, on_day)


def _cell(
    rng: np.random.Generator,
    date: pd.Timestamp,
    platform: str,
    channel: str,
    mean: float,
    conversion: float,
    incident: Incident | None,
) -> dict[str, Any]:
    activity = incident.activity(platform, channel) if incident else 1.0
    buying = incident.buying(platform, channel) if incident else 1.0
    active = rng.poisson(mean * activity)
    sessions = rng.poisson(active * 1.4)
    purchasers = rng.binomial(active, conversion * buying)
    order_value = incident.order_value if incident else 1.0
    return {
        "metric_date": date,
        "platform": platform,
        "channel": channel,
        "active_users": active,
        "new_users": rng.poisson(0.1 * mean * activity),
        "sessions": sessions,
        "events": rng.negative_binomial(5 * sessions, 5 / 11) if sessions else 0,
        "purchasers": purchasers,
        "revenue": float(rng.lognormal(3.4, 0.6, purchasers).sum()) * order_value,
    }


def _roll_up(cells: pd.DataFrame) -> pd.DataFrame:
    sums = ["active_users", "new_users", "sessions", "events", "purchasers", "revenue"]
    parts = []
    for dimension in ("all", "platform", "channel"):
        keys = ["metric_date"] + ([dimension] if dimension != "all" else [])
        part = cells.groupby(keys, as_index=False)[sums].sum()
        part["dimension"] = dimension
        part["segment"] = part[dimension] if dimension != "all" else "all"
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["conversion_rate"] = (frame["purchasers"] / frame["active_users"]).fillna(0.0)
    frame = frame[(frame["dimension"] == "all") | (frame["active_users"] > 0)]
    return frame[["metric_date", "dimension", "segment", *sums, "conversion_rate"]]


def _synthetic_labels(dates: pd.DatetimeIndex, on_day: dict[int, Incident]) -> list[dict[str, Any]]:
    """A label wherever the incident moves a segment's expected value by LABEL_CHANGE or more
    (computed from the multipliers, not from noisy draws)."""
    labels = []
    for t, incident in sorted(on_day.items()):
        for dimension, segment, change in _expected_changes(incident):
            labels += [
                {
                    "date": dates[t].date().isoformat(),
                    "dimension": dimension,
                    "segment": segment,
                    "metric": metric,
                    "kind": incident.kind,
                }
                for metric, ratio in change.items()
                if abs(ratio - 1) >= LABEL_CHANGE
            ]
    return labels


def _expected_changes(incident: Incident) -> list[tuple[str, str, dict[str, float]]]:
    """Per segment, each metric's expected value on the incident day / on a normal day."""
    cells = [
        (p, c, PLATFORMS[p] * CHANNELS[c], incident.activity(p, c), incident.buying(p, c))
        for p in PLATFORMS
        for c in CHANNELS
    ]
    segments = [("all", "all", lambda p, c: True)]
    segments += [("platform", name, lambda p, c, n=name: p == n) for name in PLATFORMS]
    segments += [("channel", name, lambda p, c, n=name: c == n) for name in CHANNELS]
    out = []
    for dimension, segment, member in segments:
        mine = [(w, a, b) for p, c, w, a, b in cells if member(p, c)]
        weight = sum(w for w, _, _ in mine)
        visitors = sum(w * a for w, a, _ in mine) / weight
        buyers = sum(w * a * b for w, a, b in mine) / weight
        change = {m: visitors for m in ("active_users", "new_users", "sessions", "events")}
        change |= {
            "purchasers": buyers,
            "revenue": buyers * incident.order_value,
            "conversion_rate": buyers / visitors if visitors else 1.0,
        }
        out.append((dimension, segment, change))
    return out


# --- report ------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Anomaly benchmark",
        "",
        "Written by `python -m benchmarks.anomaly_bench` (part of `make bench`); definitions in",
        "the module docstring.",
        "",
        "## NAB real series, rolled up to days",
        "",
        "Scored by the production scorer (default settings: 14 days of history before any flag).",
        "A flagged day overlapping a labelled window is a true positive. F1: precision = flagged",
        "days inside windows / flagged days, recall = windows detected / windows. NAB score:",
        "NAB's own standard-profile score on the daily steps (0 never flags, 100 each window",
        "flagged on its first day and nothing else; `nab_score` in the module); n/a where no",
        "window falls after NAB's 15% probation.",
        "",
        "| series (daily roll-up) | days | detector | windows detected | false-flag days | F1 | "
        "NAB score |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, row in results["nab"]["real"].items():
        for detector in DETECTORS:
            r = row[detector]
            nab = "n/a" if r["nab_score"] is None else f"{r['nab_score']:.1f}"
            lines.append(
                f"| {name} ({row['rollup']}) | {row['days']} | {detector} | "
                f"{r['detected']} / {r['windows']} | {r['false_flag_days']} | {r['f1']:.2f} | "
                f"{nab} |"
            )
    lines += _versus_baselines(results["nab"]["versus"])
    lines += [
        "",
        "### artificialNoAnomaly: every flag is a false one",
        "",
        "Each series spans 14 days, all inside the 14-day warm-up when rolled up to days; the",
        "hourly roll-up (a 24-step cycle, 48 steps of warm-up) is the real false-positive check.",
        "",
        "| series | days | daily flags: eventpulse / z3 / raw IF / STL | hours | "
        "hourly flags: eventpulse / z3 / raw IF / STL |",
        "|---|---:|---|---:|---|",
    ]
    for name, row in results["nab"]["no_anomaly"].items():
        daily, hourly = row["daily"], row["hourly"]
        lines.append(
            f"| {name} | {row['days']} | {daily['eventpulse']} / {daily['rolling_z3']} / "
            f"{daily['raw_iforest']} / {daily['stl_residual']} | {row['hours']} | "
            f"{hourly['eventpulse']} / {hourly['rolling_z3']} / {hourly['raw_iforest']} / "
            f"{hourly['stl_residual']} |"
        )
    lines += _labelled_section(
        "Demo generator (pipelines.demo, 90 days, 5,000 users)", results["demo"]
    )
    lines += _labelled_section(
        "Independent synthetic generator (90 days, 5,000 users, 3 platforms x 5 channels)",
        results["synthetic"],
    )
    lines += ["", f"Run time: {results['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def versus_baselines(real: dict[str, Any]) -> dict[str, Any]:
    """Per series, eventpulse's F1 against the best simple baseline (SIMPLE_BASELINES: what a
    user writes in ten lines) and, apart, against the established detector (ESTABLISHED)."""
    rows, counts, established = {}, _verdict_counts(), _verdict_counts()
    for name, row in real.items():
        ours = row["eventpulse"]["f1"]
        best = max(SIMPLE_BASELINES, key=lambda detector: row[detector]["f1"])
        rows[name] = {
            "eventpulse": ours,
            "best_baseline": best,
            "best_baseline_f1": row[best]["f1"],
            "verdict": _verdict(ours, row[best]["f1"]),
            ESTABLISHED: row[ESTABLISHED]["f1"],
            "verdict_established": _verdict(ours, row[ESTABLISHED]["f1"]),
        }
        counts[rows[name]["verdict"]] += 1
        established[rows[name]["verdict_established"]] += 1
    return {"series": rows, "versus_baselines": counts, f"versus_{ESTABLISHED}": established}


def _verdict_counts() -> dict[str, int]:
    return {"better": 0, "tied": 0, "worse": 0}


def _verdict(ours: float, theirs: float) -> str:
    return "better" if ours > theirs else "tied" if ours == theirs else "worse"


def _versus_baselines(versus: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### eventpulse against the best simple baseline per series (F1)",
        "",
        "The simple baselines are the rolling z-score and the raw IsolationForest; the STL",
        "residual test is the established detector family, compared on its own.",
        "",
        "| series | eventpulse | best simple baseline | verdict | established: STL | versus STL |",
        "|---|---:|---|---|---:|---|",
    ]
    for name, row in versus["series"].items():
        lines.append(
            f"| {name} | {row['eventpulse']:.2f} | {row['best_baseline']} "
            f"{row['best_baseline_f1']:.2f} | {row['verdict']} | {row[ESTABLISHED]:.2f} | "
            f"{row['verdict_established']} |"
        )
    counts, established = versus["versus_baselines"], versus[f"versus_{ESTABLISHED}"]
    total = len(versus["series"])

    def named(key: str, verdict: str) -> str:
        names = [name for name, row in versus["series"].items() if row[key] == verdict]
        return ", ".join(names) if names else "none"

    lines += [
        "",
        f"Against the best simple baseline eventpulse is better on {counts['better']} of {total} "
        f"series, tied on {counts['tied']} and below on {counts['worse']} "
        f"({named('verdict', 'worse')}).",
        "",
        f"Against STL eventpulse wins on {established['better']} series "
        f"({named('verdict_established', 'better')}), ties on {established['tied']} and loses "
        f"on {established['worse']} ({named('verdict_established', 'worse')}).",
    ]
    return lines


def _labelled_section(title: str, block: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {title}",
        "",
        "`anomaly_evaluation` numbers at the (date, dimension, segment) level: a flag is right on",
        "a labelled cell or on `all` on an incident day; recall counts labelled cells flagged at",
        "their own segment; ROC AUC ranks cells by their highest score.",
        "",
        "| seed | precision | recall | F1 | ROC AUC | labelled cells | flagged cells | "
        "false positives |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in [*block["runs"], {"seed": "mean", **block["mean"]}]:
        lines.append(
            f"| {run['seed']} | {run['precision']:.2f} | {run['recall']:.2f} | {run['f1']:.2f} | "
            f"{run['roc_auc']:.3f} | {run['labelled']:g} | {run['flagged']:g} | "
            f"{run['false_positives']:g} |"
        )
    return lines


if __name__ == "__main__":
    main()
