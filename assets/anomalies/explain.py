"""The words of an anomaly: what drove a flagged total, and one sentence for every scored row
(CONTRACT §3 `explanation`). Plain functions over the scorer's frame, no Dagster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines.formatting import metric_value, signed_percent
from pipelines.settings import DAILY_METRICS, AnomalySettings

# A rate's change pulls on the total in proportion to the users behind it.
RATES = [metric.name for metric in DAILY_METRICS if metric.kind == "rate"]
# What `_explain` reads of a scored row.
SENTENCE_COLUMNS = [
    "metric_date",
    "metric",
    "dimension",
    "segment",
    "value",
    "expected",
    "relative_change",
    "history_days",
    "is_anomaly",
    "unusual",
    "flaggable",
    "run_day",
    "direction",
    "score",
    "driver",
    "segment_shares",
    "last_week",
    "median_4w",
    "period",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def drivers(scored: pd.DataFrame) -> pd.Series:
    """For each flagged `all` row, the segment whose change contributed most in the same
    direction, as "platform=android: −91% purchasers" (`driver_rows` says how it is chosen)."""
    found = pd.Series(None, index=scored.index, dtype=object)
    for idx, top in driver_rows(scored).items():
        metric = scored.at[idx, "metric"]
        change = signed_percent(top["relative_change"])
        found[idx] = f"{top['dimension']}={top['segment']}: {change} {metric}"
    return found


def driver_rows(scored: pd.DataFrame) -> dict[Any, pd.Series]:
    """Index of each flagged `all` row -> the segment row of the same day and metric that
    contributed most to its change, in the same direction (none when no segment moved so).

    Contribution is value - expected; for a rate it is weighted by the segment's users, which
    is its pull on the overall rate. Both dimensions compete: the biggest single mover wins.
    """
    found: dict[Any, pd.Series] = {}
    totals = scored[(scored["dimension"] == "all") & scored["is_anomaly"]]
    segments = scored[scored["dimension"] != "all"]
    if totals.empty or segments.empty:
        return found
    segments = _contributions(segments, totals)
    by_day = dict(list(segments.groupby(["metric_date", "metric"])))
    for idx, row in totals.iterrows():
        candidates = by_day.get((row["metric_date"], row["metric"]))
        if candidates is None:
            continue
        sign = 1.0 if row["value"] >= row["expected"] else -1.0
        pull = candidates["contribution"] * sign
        if (pull > 0).any():
            found[idx] = candidates.loc[pull.idxmax()]
    return found


def explanations(scored: pd.DataFrame, settings: AnomalySettings, max_run_days: int) -> list[str]:
    """The sentence of every scored row; `max_run_days`: how many days of a run are flagged."""
    # Only the columns a sentence reads: boxing every column of every row costs more than
    # writing the sentences when a backfill explains a year of rows.
    columns = [column for column in SENTENCE_COLUMNS if column in scored.columns]
    rows = scored[columns].to_dict("records")
    return [_explain(row, settings, max_run_days) for row in rows]


def _explain(row: Mapping[str, Any], settings: AnomalySettings, max_run_days: int) -> str:
    """One sentence a person can read (CONTRACT §3): metric, segment, value, expected, change."""
    metric = row["metric"]
    who = "all users" if row["dimension"] == "all" else f"{row['dimension']}={row['segment']}"
    value = metric_value(metric, row["value"], "label", "n/a")
    base = f"{metric} for {who} was {value} on {_day(row['metric_date'])}"
    if pd.isna(row["expected"]):
        return f"{base}; the first day of this series, nothing to compare it with yet."
    expected = metric_value(metric, row["expected"], "label", "n/a")
    change = _change_phrase(row["relative_change"], expected)
    sentence = f"{base}, {change} {_usual(row)}"
    if row["history_days"] < settings.min_history_days:
        return (
            f"{sentence}; not judged yet: {row['history_days']} days of history, anomalies "
            f"are flagged from {settings.min_history_days}."
        )
    if row["is_anomaly"]:
        driver = f", driven by {row['driver']}" if isinstance(row.get("driver"), str) else ""
        parts = [f"{sentence}: an unusual {row['direction']} (score {row['score']:.2f}){driver}"]
        parts.append(_comparisons(row))
        if isinstance(row.get("segment_shares"), str):
            parts.append(f"change by segment: {row['segment_shares']}")
        return "; ".join(p for p in parts if p) + "."
    if not row["unusual"]:
        return f"{sentence}; within the normal range."
    if not row["flaggable"]:
        return f"{sentence}; unusual but not flagged: too few users that day to judge a rate."
    if row["run_day"] > max_run_days:
        return (
            f"{sentence}; day {row['run_day']} in a row this far from normal: flagged on the "
            f"first {max_run_days}, not again (it may be the new normal)."
        )
    return (
        f"{sentence}; unusual but not flagged: only {settings.directions}s are flagged "
        "(anomalies.directions)."
    )


def _comparisons(row: Mapping[str, Any]) -> str:
    """The comparisons a person asks for first: the same weekday a week before, the median of
    the last four weeks."""
    metric, found = row["metric"], []
    if pd.notna(row.get("last_week")):
        when = "the same weekday last week" if row["period"] == 7 else "one cycle before"
        found.append(f"{metric_value(metric, row['last_week'], 'label', 'n/a')} {when}")
    if pd.notna(row.get("median_4w")):
        found.append(f"{metric_value(metric, row['median_4w'], 'label', 'n/a')} the 4-week median")
    return ", ".join(found)


def segment_shares(scored: pd.DataFrame, top: int = 3, enough: float = 0.8) -> pd.Series:
    """For each flagged `all` row, the segments that explain most of its change, per dimension:
    "channel=referral 91%; platform=web 64%, platform=ios 25%" (root cause analysis).

    A segment's share is its contribution (value - expected; for a rate weighted by its users)
    over the net contribution of its dimension's segments, in the direction of the change; per
    dimension the largest shares are named until they reach `enough` (at most `top`). A share
    over 100% means other segments moved the other way.
    """
    found = pd.Series(None, index=scored.index, dtype=object)
    totals = scored[(scored["dimension"] == "all") & scored["is_anomaly"]]
    segments = scored[scored["dimension"] != "all"]
    if totals.empty or segments.empty:
        return found
    by_day = dict(list(_contributions(segments, totals).groupby(["metric_date", "metric"])))
    for idx, row in totals.iterrows():
        candidates = by_day.get((row["metric_date"], row["metric"]))
        if candidates is None:
            continue
        sign = 1.0 if row["value"] >= row["expected"] else -1.0
        named = []
        for dimension, group in candidates.groupby("dimension", sort=True):
            pull = group["contribution"] * sign
            net = pull.sum()
            if net <= 0:
                continue
            shares = (pull / net).sort_values(ascending=False)
            picked, total = [], 0.0
            for seg_idx, share in shares.items():
                if share <= 0 or len(picked) == top or total >= enough:
                    break
                picked.append(f"{dimension}={group.at[seg_idx, 'segment']} {share:.0%}")
                total += share
            named.append(", ".join(picked))
        if named:
            found[idx] = "; ".join(named)
    return found


def _contributions(segments: pd.DataFrame, totals: pd.DataFrame) -> pd.DataFrame:
    """The segment rows of the days and metrics of `totals`, with their contribution to the
    total's change (value - expected; for a rate weighted by its users), where it has one.
    Only those days and metrics: a backfill scores a year of days, a few of them flagged."""
    keys = pd.MultiIndex.from_frame(totals[["metric_date", "metric"]])
    segments = segments[pd.MultiIndex.from_frame(segments[["metric_date", "metric"]]).isin(keys)]
    weight = np.where(segments["metric"].isin(RATES), segments["volume"], 1.0)
    segments = segments.assign(contribution=(segments["value"] - segments["expected"]) * weight)
    return segments.dropna(subset=["contribution"])


def _usual(row: Mapping[str, Any]) -> str:
    if row["period"] == 7:
        return f"(a normal {WEEKDAYS[pd.Timestamp(row['metric_date']).day_of_week]})"
    return "(the usual level at this point of the cycle)"


def _change_phrase(relative: float, expected: str) -> str:
    if pd.isna(relative):
        return f"against an expected {expected}"
    if abs(relative) < 0.005:
        return f"in line with the expected {expected}"
    if relative >= 9:
        return f"{relative + 1:,.0f} times the expected {expected}"
    return f"{abs(relative):.0%} {'above' if relative > 0 else 'below'} the expected {expected}"


def _day(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()
