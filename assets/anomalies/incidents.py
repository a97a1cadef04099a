"""Incidents (CONTRACT §3 `anomalies`): the flagged rows of one day that share a cause, grouped
so a person reads one story instead of a list of near-duplicate rows. Plain functions, no Dagster.

Flagged rows of one day and one direction are joined when:
- they are the same segment (metrics that move together: active users, sessions, events...);
- one is an `all` row and the other a segment row of the same metric (the segment drives it);
- one is an `all` row that no flagged segment row of its metric explains, and the other is a
  flagged row of the segment that contributed most to its change (`explain.driver_rows`);
- both are `all` rows still alone after that (totals that move together).
Every flagged row is in exactly one incident (the connected groups of those links). Its id is
`YYYY-MM-DD:<metric>:<dimension>:<segment>` of its lead row (an `all` row first, then in
CONTRACT metric order), so scoring a day again with the same flags gives the same ids, and an
alert already sent for an incident is not sent again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from assets.anomalies.explain import driver_rows
from pipelines.formatting import metric_value, signed_percent
from pipelines.settings import DAILY_METRICS, METRIC_NAMES

INCIDENT_COLUMNS = [
    "incident_id",
    "metric_date",
    "metric",
    "dimension",
    "segment",
    "direction",
    "value",
    "expected",
    "score",
    "is_lead",
    "incident_rows",
    "summary",
]
LABELS = {metric.name: metric.label for metric in DAILY_METRICS}
SUMMARY_ROWS = 6  # rows named in a summary; the rest are counted (all are in the table)


def group_incidents(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per flagged row of `scored` (the scorer's frame), with its incident."""
    flagged = scored[scored["is_anomaly"].astype(bool)]
    if flagged.empty:
        return pd.DataFrame(columns=INCIDENT_COLUMNS)
    drivers = driver_rows(scored)
    parts = []
    for _, day in flagged.groupby(["metric_date", "direction"], sort=True):
        for members in _components(day, drivers):
            parts.append(_incident(day.loc[members]))
    return pd.concat(parts, ignore_index=True)[INCIDENT_COLUMNS]


def _components(day: pd.DataFrame, drivers: dict[Any, pd.Series]) -> list[list[Any]]:
    """The groups of one day's flagged rows of one direction (indexes of `day`)."""
    parent = {idx: idx for idx in day.index}

    def find(idx: Any) -> Any:
        while parent[idx] != idx:
            parent[idx] = parent[parent[idx]]
            idx = parent[idx]
        return idx

    def join(a: Any, b: Any) -> None:
        parent[find(a)] = find(b)

    segment_of = {idx: (row.dimension, row.segment) for idx, row in day.iterrows()}
    by_segment: dict[tuple[str, str], list[Any]] = {}
    for idx, key in segment_of.items():
        by_segment.setdefault(key, []).append(idx)
    for key, members in by_segment.items():
        if key[0] != "all":
            for other in members[1:]:
                join(members[0], other)
    totals = [idx for idx in day.index if day.at[idx, "dimension"] == "all"]
    alone = []
    for idx in totals:
        metric = day.at[idx, "metric"]
        same_metric = [
            other
            for other in day.index
            if day.at[other, "dimension"] != "all" and day.at[other, "metric"] == metric
        ]
        for other in same_metric:
            join(idx, other)
        driver = drivers.get(idx)
        driver_rows_flagged = (
            by_segment.get((driver["dimension"], driver["segment"]), [])
            if driver is not None
            else []
        )
        if not same_metric and driver_rows_flagged:
            join(idx, driver_rows_flagged[0])
        elif not same_metric:
            alone.append(idx)
    for idx in alone[1:]:
        join(alone[0], idx)
    groups: dict[Any, list[Any]] = {}
    for idx in day.index:
        groups.setdefault(find(idx), []).append(idx)
    return list(groups.values())


def _order(rows: pd.DataFrame) -> pd.DataFrame:
    """`all` rows first, then CONTRACT metric order, then segment."""
    metric_rank = {name: rank for rank, name in enumerate(METRIC_NAMES)}
    return rows.assign(
        _not_all=rows["dimension"] != "all",
        _rank=rows["metric"].map(metric_rank).fillna(len(metric_rank)),
    ).sort_values(["_not_all", "_rank", "metric", "dimension", "segment"], kind="stable")


def _incident(rows: pd.DataFrame) -> pd.DataFrame:
    rows = _order(rows)
    lead = rows.iloc[0]
    day = pd.Timestamp(lead["metric_date"]).date().isoformat()
    incident_id = f"{day}:{lead['metric']}:{lead['dimension']}:{lead['segment']}"
    out = rows.assign(
        incident_id=incident_id,
        is_lead=[True] + [False] * (len(rows) - 1),
        incident_rows=len(rows),
        summary=incident_summary(rows),
    )
    return out


def incident_summary(rows: pd.DataFrame) -> str:
    """A few sentences a person reads: the lead row, then the others in one list."""
    rows = _order(rows)
    lead = rows.iloc[0]
    day = pd.Timestamp(lead["metric_date"]).date().isoformat()
    word = "spike" if lead["direction"] == "spike" else "dip"
    text = (
        f"Anomaly on {day}: a {word} in {_label(lead['metric'])} for {_who(lead)}, "
        f"{_numbers(lead)}."
    )
    shares = lead.get("segment_shares")
    if isinstance(shares, str):
        text = f"{text} Change by segment: {shares}."
    others = rows.iloc[1:]
    if others.empty:
        return text
    named = [f"{_label(r['metric'])} for {_who(r)} ({_change(r)})" for _, r in others.iterrows()]
    more = len(named) - SUMMARY_ROWS
    listed = ", ".join(named[:SUMMARY_ROWS]) + (f" and {more} more" if more > 0 else "")
    return f"{text} Moving with it ({len(rows)} flagged rows in all): {listed}."


def _label(metric: str) -> str:
    return LABELS.get(metric, metric).lower()


def _who(row: pd.Series) -> str:
    return "all users" if row["dimension"] == "all" else f"{row['dimension']}={row['segment']}"


def _numbers(row: pd.Series) -> str:
    value = metric_value(row["metric"], row["value"], "label", "n/a")
    expected = metric_value(row["metric"], row["expected"], "label", "n/a")
    return f"{value} against an expected {expected} ({_change(row)})"


def _change(row: pd.Series) -> str:
    expected = row["expected"]
    relative = row["value"] / expected - 1 if expected else None
    return signed_percent(relative)
