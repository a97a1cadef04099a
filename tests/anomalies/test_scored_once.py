"""Each day scored once (CONTRACT §3 `anomalies`): a run stores what the next one needs and
scores only new days and days whose metrics changed; the rows equal one run over all days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_anomalies import _daily_metrics, _with_rates

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import LOOKBACK_DAYS, score_changed_days
from assets.anomalies.scoring import score_anomalies
from pipelines import warehouse
from pipelines.settings import AnomalySettings

KEY = ["metric_date", "metric", "dimension", "segment"]
DAYS = 126  # longer than LOOKBACK_DAYS, so the daily runs read only the recent days


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(23)
    frame = _daily_metrics(rng, days=DAYS, segments={"web": 700, "ios": 300, "tiny": 25})
    # A segment with days without users (its rate series has gaps), an outage and a level shift.
    tiny_gap = (frame["segment"] == "tiny") & (frame["metric_date"].dt.day % 4 == 0)
    frame.loc[tiny_gap, ["active_users", "purchasers", "revenue", "sessions", "events"]] = 0
    frame = frame[~(tiny_gap & (frame["metric_date"].dt.day % 8 == 0))]
    days = sorted(frame["metric_date"].unique())
    web = frame["segment"].isin(["web", "all"])
    frame.loc[web & (frame["metric_date"] == days[121]), "events"] *= 0.2
    frame.loc[web & (frame["metric_date"] >= days[123]), "sessions"] *= 1.8
    return _with_rates(frame).reset_index(drop=True)


def _store(home: Path, daily: pd.DataFrame) -> pd.DataFrame:
    """Replace daily_metrics with `daily`, run the scorer as the asset does; the rows scored."""
    with warehouse.writer(home) as conn:
        conn.register("frame", daily)
        conn.execute("create or replace table daily_metrics as select * from frame")
        conn.unregister("frame")
        update = score_changed_days(conn, AnomalySettings())
        write_anomalies(conn, update, AnomalySettings())
    return update.rows


def _table(home: Path, table: str = "anomalies") -> pd.DataFrame:
    with warehouse.reader(home) as conn:
        return conn.sql(f"select * from {table} order by all").df()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in key order, text columns as objects with None for missing (a frame read back from
    DuckDB holds NaN where the scorer's frame holds None)."""
    frame = frame.sort_values(KEY).reset_index(drop=True)
    for column in ("direction", "explanation", "driver", "segment_shares"):
        if column in frame:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
    return frame


@pytest.mark.slow
def test_days_scored_one_run_at_a_time_equal_one_run_over_all_days(home: Path) -> None:
    frame = _frame()
    days = sorted(frame["metric_date"].unique())
    first_run = 119
    _store(home, frame[frame["metric_date"] <= days[first_run]])
    before = _table(home)
    for day in days[first_run + 1 :]:
        scored = _store(home, frame[frame["metric_date"] <= day])
        # Only the new day was scored, from LOOKBACK_DAYS of metrics.
        assert set(scored["metric_date"]) == {pd.Timestamp(day)}
    after = _table(home)
    # The rows of days 1..N did not change when days N+1.. arrived ...
    kept = after[after["metric_date"] <= days[first_run]].reset_index(drop=True)
    pd.testing.assert_frame_equal(_sorted(kept), _sorted(before), check_dtype=False)
    # ... and every row equals one run over all days at once.
    whole = _sorted(score_anomalies(frame))
    ours = _sorted(after.assign(metric_date=pd.to_datetime(after["metric_date"])))
    pd.testing.assert_frame_equal(ours[whole.columns], whole, check_dtype=False)
    assert ours["is_anomaly"].any()  # the outage and the shift are in there
    assert LOOKBACK_DAYS < first_run


def test_a_run_with_nothing_new_scores_nothing(home: Path) -> None:
    frame = _frame()
    short = frame[frame["metric_date"] < frame["metric_date"].min() + pd.Timedelta(days=40)]
    assert len(_store(home, short)) > 0
    stored = _table(home)
    assert _store(home, short).empty
    pd.testing.assert_frame_equal(_table(home), stored)


def test_a_changed_day_is_scored_again_with_every_later_day(home: Path) -> None:
    frame = _frame()
    short = frame[frame["metric_date"] < frame["metric_date"].min() + pd.Timedelta(days=40)]
    _store(home, short)
    changed_day = short["metric_date"].max() - pd.Timedelta(days=2)
    late = short.copy()
    late.loc[late["metric_date"] == changed_day, "events"] += 5  # late events arrived
    scored = _store(home, late)
    assert scored["metric_date"].min() == changed_day
    assert set(scored["metric_date"]) == {changed_day + pd.Timedelta(days=k) for k in range(3)}
    whole = score_anomalies(late)
    ours = _table(home)
    assert len(ours) == len(whole)
    np.testing.assert_allclose(
        _sorted(ours)["score"].to_numpy(),
        _sorted(whole)["score"].to_numpy(),
    )


def test_changed_settings_score_every_day_again(home: Path) -> None:
    frame = _frame()
    short = frame[frame["metric_date"] < frame["metric_date"].min() + pd.Timedelta(days=30)]
    _store(home, short)
    with warehouse.writer(home) as conn:
        spikes_only = AnomalySettings(directions="spike")
        update = score_changed_days(conn, spikes_only)
    assert update.full and len(update.rows) == len(score_anomalies(short, spikes_only))
    assert update.score_from == dt.date(1900, 1, 1)
