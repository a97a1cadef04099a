"""Score each day once (CONTRACT §3 `anomalies`): what a run stores so the next run scores only
new days and days whose metrics changed, at a cost that does not grow with history.

A day's row depends only on that day and earlier days (`assets.anomalies.scoring`), so:
- `anomaly_inputs` keeps the `daily_metrics` rows as they were scored. The first day where
  `daily_metrics` now differs (a new day, late events, a re-run) is where scoring starts;
  every later day is scored again too, since its baseline and its forest saw the changed day.
- `anomalies` keeps each row's features and `run_day`: the forest of a new day is fitted on
  the stored rows of the TRAIN_DAYS days before it, and a run of flagged days continues.
- `anomaly_state` keeps the scorer version and the settings the rows were scored with: a
  change of either scores everything again.
The features of a new day need LOOKBACK_DAYS of metrics before it, so a daily run reads
LOOKBACK_DAYS of `daily_metrics` and TRAIN_DAYS of `anomalies`, whatever the history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import duckdb
import pandas as pd

from assets.anomalies.scoring import (
    DAILY_METRIC_COLUMNS,
    FEATURES,
    ROW_KEY,
    SERIES_KEY,
    TRAIN_DAYS,
    Earlier,
    score_anomalies,
)
from pipelines.settings import AnomalySettings

# Bump when scoring changes: rows stored by another version are scored again.
SCORER_VERSION = 6
# Days of metrics before a day that its features read: the baseline's weekday factors reach
# 5 weeks back, the spread of its residuals 4 weeks more (63 days); 14 weeks leave room for
# a rate series with days without users (those days are not rows of the series).
LOOKBACK_DAYS = 98
# Before any day: `score_from` of a run that scores everything.
BEGINNING = dt.date(1900, 1, 1)

_METRICS = ", ".join(DAILY_METRIC_COLUMNS)
# The first day whose daily_metrics rows differ from those scored (added, changed, removed).
CHANGED_FROM = f"""
select min(metric_date) from (
    (select {_METRICS} from daily_metrics except all select {_METRICS} from anomaly_inputs)
    union all
    (select {_METRICS} from anomaly_inputs except all select {_METRICS} from daily_metrics)
)
"""


@dataclasses.dataclass(frozen=True)
class Update:
    """The rows of one scoring run: every row from `score_from` on (all rows when `full`);
    `score_from` None: nothing changed since the last run, nothing to write."""

    rows: pd.DataFrame
    score_from: dt.date | None
    full: bool


def settings_key(settings: AnomalySettings) -> str:
    """The scorer version and the anomaly settings, as stored in `anomaly_state`."""
    return json.dumps(
        {"version": SCORER_VERSION, **dataclasses.asdict(settings)}, sort_keys=True, default=list
    )


def first_day_to_score(
    conn: duckdb.DuckDBPyConnection, settings: AnomalySettings
) -> tuple[dt.date | None, bool]:
    """(first day to score, whether everything is scored again); (None, False): nothing changed."""
    if not all(_has_table(conn, t) for t in ("anomalies", "anomaly_inputs", "anomaly_state")):
        return BEGINNING, True
    stored = conn.execute("select settings from anomaly_state").fetchall()
    if [row[0] for row in stored] != [settings_key(settings)]:
        return BEGINNING, True
    changed = conn.execute(CHANGED_FROM).fetchall()[0][0]
    return changed, False


def score_changed_days(conn: duckdb.DuckDBPyConnection, settings: AnomalySettings) -> Update:
    """Score the days of `daily_metrics` that are new or changed since the last run."""
    score_from, full = first_day_to_score(conn, settings)
    if score_from is None:
        return Update(pd.DataFrame(), None, False)
    if full:
        daily = conn.sql(
            f"select {_METRICS} from daily_metrics order by metric_date, dimension, segment"
        ).df()
        return Update(score_anomalies(daily, settings), BEGINNING, True)
    tail_start = score_from - dt.timedelta(days=LOOKBACK_DAYS)
    daily = conn.execute(
        f"select {_METRICS} from daily_metrics where metric_date >= $start "
        "order by metric_date, dimension, segment",
        {"start": tail_start},
    ).df()
    earlier = Earlier(
        score_from=pd.Timestamp(score_from),
        rows=_earlier_rows(conn, score_from),
        offsets=_offsets(conn, tail_start),
        first_days=_first_days(conn),
    )
    return Update(score_anomalies(daily, settings, earlier), score_from, False)


def _earlier_rows(conn: duckdb.DuckDBPyConnection, score_from: dt.date) -> pd.DataFrame:
    columns = ", ".join([*ROW_KEY, *FEATURES, "history_days", "direction", "run_day"])
    return conn.execute(
        f"select {columns} from anomalies where metric_date >= $start and metric_date < $end "
        "order by metric_date, metric, dimension, segment",
        {"start": score_from - dt.timedelta(days=TRAIN_DAYS), "end": score_from},
    ).df()


def _offsets(conn: duckdb.DuckDBPyConnection, tail_start: dt.date) -> dict[tuple, int]:
    """Rows of each series before `tail_start`: where its `history_days` count resumes."""
    keys = ", ".join(SERIES_KEY)
    rows = conn.execute(
        f"select {keys}, count(*) from anomalies where metric_date < $start group by all",
        {"start": tail_start},
    ).fetchall()
    return {tuple(row[:3]): int(row[3]) for row in rows}


def _first_days(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], pd.Timestamp]:
    rows = conn.sql(
        "select dimension, segment, min(metric_date) from daily_metrics group by all"
    ).fetchall()
    return {(dimension, segment): pd.Timestamp(day) for dimension, segment, day in rows}


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = conn.execute(
        "select count(*) from information_schema.tables where table_name = $name",
        {"name": name},
    ).fetchall()
    return found[0][0] > 0
