"""Anomaly scoring (CONTRACT §3 `anomalies`): hand-made series, no look-ahead, explanations,
the low-volume guard, the evaluation, the charts and the two assets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pytest

from assets.anomalies.assets import anomalies, anomaly_evaluation
from assets.anomalies.charts import write_anomaly_charts
from assets.anomalies.evaluation import evaluate_anomalies
from assets.anomalies.scoring import (
    ANOMALY_COLUMNS,
    DAILY_METRIC_COLUMNS,
    score_anomalies,
    score_series,
)
from pipelines import warehouse
from pipelines.charts import series_chart
from pipelines.resources import Warehouse
from pipelines.settings import AnomalySettings

START = dt.date(2026, 3, 2)  # a Monday
DAYS = 70
INCIDENT_DAY = 45
WEEKLY = np.array([1.0, 1.0, 1.05, 1.0, 0.95, 0.6, 0.5])  # Monday .. Sunday


def _dates(days: int) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=days, freq="D")


def _weekly_counts(rng: np.random.Generator, mean: float, days: int = DAYS) -> np.ndarray:
    weekday = _dates(days).day_of_week.to_numpy()
    return rng.poisson(mean * WEEKLY[weekday]).astype(float)


def _long(series: dict[str, np.ndarray], metric: str = "active_users") -> pd.DataFrame:
    """Hand-made series as segments of one metric, in the scorer's long format."""
    return pd.concat(
        pd.DataFrame(
            {
                "metric_date": _dates(len(values)),
                "metric": metric,
                "dimension": "test",
                "segment": name,
                "value": values,
            }
        )
        for name, values in series.items()
    )


@pytest.fixture(scope="module")
def hand_made() -> pd.DataFrame:
    """One scoring run over four hand-made daily series (~1,000 a day, a strong weekend dip)."""
    rng = np.random.default_rng(11)
    spike, dip, weekly, shift = (_weekly_counts(rng, 1000) for _ in range(4))
    spike[INCIDENT_DAY] *= 2.5
    dip[INCIDENT_DAY] *= 0.3
    shift[40:] *= 1.6
    return score_series(_long({"spike": spike, "dip": dip, "weekly": weekly, "shift": shift}))


def _rows(scored: pd.DataFrame, segment: str) -> pd.DataFrame:
    return scored[scored["segment"] == segment].reset_index(drop=True)


def test_a_spike_is_flagged_on_its_day_only(hand_made: pd.DataFrame) -> None:
    rows = _rows(hand_made, "spike")
    assert rows.index[rows["is_anomaly"]].tolist() == [INCIDENT_DAY]
    assert rows.loc[INCIDENT_DAY, "direction"] == "spike"
    assert rows.loc[INCIDENT_DAY, "score"] > rows["score"].drop(INCIDENT_DAY).max()


def test_a_dip_is_flagged_on_its_day_only(hand_made: pd.DataFrame) -> None:
    rows = _rows(hand_made, "dip")
    assert rows.index[rows["is_anomaly"]].tolist() == [INCIDENT_DAY]
    assert rows.loc[INCIDENT_DAY, "direction"] == "dip"
    assert rows.loc[INCIDENT_DAY, "expected"] == pytest.approx(1000 * WEEKLY[3], rel=0.1)


def test_a_weekly_pattern_is_not_an_anomaly(hand_made: pd.DataFrame) -> None:
    rows = _rows(hand_made, "weekly")
    assert not rows["is_anomaly"].any()
    # Once two weeks are known, a Sunday is expected at its Sunday level, not the weekday one.
    sundays = rows[(rows["metric_date"].dt.day_of_week == 6) & (rows["history_days"] >= 28)]
    assert (sundays["expected"] < 0.6 * 1000).all()


def test_a_level_shift_is_flagged_when_it_starts_then_becomes_normal(
    hand_made: pd.DataFrame,
) -> None:
    rows = _rows(hand_made, "shift")
    flagged = rows.index[rows["is_anomaly"]].tolist()
    assert flagged and flagged[0] == 40
    assert all(day < 47 for day in flagged)
    weekday = int(rows.loc[60, "f_phase"])
    assert rows.loc[60, "expected"] == pytest.approx(1600 * WEEKLY[weekday], rel=0.1)


def test_a_series_too_short_to_judge_is_scored_but_never_flagged() -> None:
    rng = np.random.default_rng(3)
    frame = _daily_metrics(rng, days=12, segments={"web": 600, "ios": 400})
    frame.loc[frame["metric_date"] == frame["metric_date"].max(), "active_users"] *= 4
    scored = score_anomalies(frame)
    assert not scored["is_anomaly"].any()
    last = scored[scored["metric_date"] == scored["metric_date"].max()]
    assert (last["score"] > 0).all()
    assert last["explanation"].str.contains("not judged yet: 11 days of history").all()


def test_scores_of_past_days_do_not_change_when_a_day_is_appended() -> None:
    rng = np.random.default_rng(5)
    frame = _daily_metrics(rng, days=36, segments={"web": 600, "ios": 300})
    last_day = frame["metric_date"].max()
    before = score_anomalies(frame[frame["metric_date"] < last_day])
    after = score_anomalies(frame)
    after = after[after["metric_date"] < last_day]
    key = ["metric_date", "metric", "dimension", "segment"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )


def test_an_outage_names_its_segment_and_the_total_names_the_driver() -> None:
    rng = np.random.default_rng(7)
    frame = _daily_metrics(rng, days=42, segments={"android": 900, "ios": 300, "web": 300})
    outage = (frame["metric_date"] == frame["metric_date"].max()) & (
        frame["segment"].isin(["android", "all"])
    )
    android_purchasers = frame.loc[outage & (frame["segment"] == "android"), "purchasers"].sum()
    frame.loc[outage & (frame["segment"] == "android"), ["purchasers", "revenue"]] = 0
    frame.loc[outage & (frame["segment"] == "all"), "purchasers"] -= android_purchasers
    frame = _with_rates(frame)

    scored = score_anomalies(frame)
    day = scored[(scored["metric_date"] == scored["metric_date"].max()) & scored["is_anomaly"]]
    android = day[(day["segment"] == "android") & (day["metric"] == "purchasers")]
    total = day[(day["segment"] == "all") & (day["metric"] == "purchasers")]
    assert len(android) == 1 and len(total) == 1
    sentence = android["explanation"].iloc[0]
    assert sentence.startswith("purchasers for platform=android was 0 on")
    assert "100% below the expected" in sentence
    assert "driven by platform=android: \u2212100% purchasers" in total["explanation"].iloc[0]
    # The comparisons a PM asks for first, and which segments explain the total's change.
    last_week = frame[(frame["segment"] == "android")].iloc[-8]["purchasers"]
    assert f"{last_week:,.0f} the same weekday last week" in sentence
    assert "the 4-week median" in sentence
    shares = total["segment_shares"].iloc[0]
    assert shares.startswith("platform=android ")
    android_share = float(shares.split()[1].rstrip("%;,")) / 100
    segment_rows = scored[
        (scored["metric_date"] == scored["metric_date"].max())
        & (scored["metric"] == "purchasers")
        & (scored["dimension"] == "platform")
    ].set_index("segment")
    pulls = segment_rows["expected"] - segment_rows["value"]  # a dip: the pull downwards
    assert android_share == pytest.approx(pulls["android"] / pulls.sum(), abs=0.006)
    assert "change by segment: platform=android" in total["explanation"].iloc[0]
    assert not day["segment"].isin(["ios", "web"]).any()


def test_conversion_rate_of_a_handful_of_users_never_flags() -> None:
    rng = np.random.default_rng(9)
    frame = _daily_metrics(rng, days=60, segments={"web": 800, "tiny": 12})
    tiny = frame["segment"] == "tiny"
    frame.loc[tiny & (frame["metric_date"] == frame["metric_date"].iloc[-1]), "purchasers"] = 6
    frame = _with_rates(frame)
    scored = score_anomalies(frame)
    rate = scored[(scored["segment"] == "tiny") & (scored["metric"] == "conversion_rate")]
    assert not rate["is_anomaly"].any()
    assert not rate["flaggable"].any()


def test_directions_spike_keeps_dips_out_and_says_so(hand_made: pd.DataFrame) -> None:
    rng = np.random.default_rng(11)
    dip = _weekly_counts(rng, 1000)
    dip[INCIDENT_DAY] *= 0.3
    scored = score_anomalies(_as_daily_metrics(dip), AnomalySettings(directions="spike"))
    active = scored[scored["metric"] == "active_users"].reset_index(drop=True)
    assert not active["is_anomaly"].any()
    assert "only spikes are flagged" in active.loc[INCIDENT_DAY, "explanation"]


def test_result_has_the_contract_columns_from_pandas_or_polars() -> None:
    rng = np.random.default_rng(1)
    frame = _daily_metrics(rng, days=20, segments={"web": 100})
    scored = score_anomalies(frame)
    pd.testing.assert_frame_equal(scored, score_anomalies(pl.from_pandas(frame)))
    assert list(scored.columns) == ANOMALY_COLUMNS
    assert scored["score"].between(0, 1).all()
    assert set(scored["direction"].dropna()) <= {"spike", "dip"}
    assert score_anomalies(scored.iloc[:0].reindex(columns=DAILY_METRIC_COLUMNS)).empty


def test_evaluation_of_a_hand_labelled_case() -> None:
    day1, day2 = "2026-03-10", "2026-03-11"
    rows = [
        # (date, dimension, segment, metric, score, flagged)
        (day1, "platform", "android", "purchasers", 0.9, True),  # labelled: true positive
        (day1, "all", "all", "purchasers", 0.7, True),  # `all` on an incident day: right
        (day1, "platform", "ios", "purchasers", 0.3, False),
        (day2, "platform", "ios", "purchasers", 0.8, True),  # false positive
        (day2, "platform", "android", "purchasers", 0.2, False),
        (day2, "channel", "ads", "sessions", 0.6, False),  # labelled, missed
        (day2, "all", "all", "purchasers", 0.1, False),  # left out of the AUC
    ]
    frame = pd.DataFrame(
        rows, columns=["metric_date", "dimension", "segment", "metric", "score", "is_anomaly"]
    )
    labels = [
        {"date": day1, "dimension": "platform", "segment": "android", "metric": "purchasers"},
        {"date": day2, "dimension": "channel", "segment": "ads", "metric": "sessions"},
    ]
    table = evaluate_anomalies(frame, labels).set_index("metric")
    overall = table.loc["overall"]
    assert (overall["flagged"], overall["true_positives"], overall["false_positives"]) == (3, 2, 1)
    assert overall["precision"] == pytest.approx(2 / 3)
    assert overall["recall"] == pytest.approx(1 / 2)
    assert overall["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # Positives 0.9 and 0.6 against negatives 0.3, 0.8, 0.2 (day1 `all` is left out): 5 of 6.
    assert overall["roc_auc"] == pytest.approx(5 / 6)
    assert table.loc["sessions", "recall"] == 0.0
    assert table.loc["purchasers", "recall"] == 1.0


def test_a_chart_is_written_per_flagged_series(hand_made: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_anomaly_charts(hand_made, tmp_path / "charts")
    names = sorted(path.name for path in paths)
    assert "active_users__test__spike.png" in names and "active_users__test__dip.png" in names
    assert "active_users__test__weekly.png" not in names
    one_day = _rows(hand_made, "dip").iloc[INCIDENT_DAY - 14 : INCIDENT_DAY + 1]
    single = series_chart(one_day, tmp_path / "one.png")
    assert single.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_assets_write_the_tables_and_the_evaluation(home: Path) -> None:
    rng = np.random.default_rng(13)
    frame = _daily_metrics(rng, days=35, segments={"web": 500, "ios": 300})
    outage_day = frame["metric_date"].max()
    frame.loc[(frame["metric_date"] == outage_day) & (frame["segment"] != "ios"), "events"] *= 0.2
    with warehouse.writer(home) as conn:
        conn.register("frame", frame)
        conn.execute("create table daily_metrics as select * from frame")
        conn.unregister("frame")
    label = {"date": str(outage_day.date()), "dimension": "platform", "segment": "web"}
    (home / "demo_labels.json").write_text(json.dumps([{**label, "metric": "events"}]))

    result = dg.materialize(
        [anomalies, anomaly_evaluation], resources={"warehouse": Warehouse(home=str(home))}
    )

    assert result.success
    with warehouse.reader(home) as conn:
        counts = "select count(*), count(*) filter (is_anomaly) from anomalies"
        count, flagged = conn.sql(counts).fetchall()[0]
        evaluation = conn.sql("select * from anomaly_evaluation").df().set_index("metric")
    assert count == len(score_anomalies(frame)) and flagged >= 1
    assert evaluation.loc["events", "recall"] == 1.0
    assert (home / "reports" / "anomalies" / "events__platform__web.png").exists()


def test_evaluation_without_labels_is_an_empty_table(home: Path) -> None:
    rng = np.random.default_rng(17)
    frame = _daily_metrics(rng, days=16, segments={"web": 200})
    with warehouse.writer(home) as conn:
        conn.register("frame", frame)
        conn.execute("create table daily_metrics as select * from frame")
        conn.unregister("frame")
    result = dg.materialize(
        [anomalies, anomaly_evaluation], resources={"warehouse": Warehouse(home=str(home))}
    )
    metadata = result.asset_materializations_for_node("anomaly_evaluation")[0].metadata
    assert metadata["labels"].value.startswith("no labels")
    with warehouse.reader(home) as conn:
        assert conn.sql("select count(*) from anomaly_evaluation").fetchall()[0][0] == 0


# --- daily_metrics builders --------------------------------------------------------------------


def _daily_metrics(rng: np.random.Generator, days: int, segments: dict[str, float]) -> pd.DataFrame:
    """A CONTRACT §3 daily_metrics frame: platform segments (users a day) and their total."""
    parts = []
    for segment, users in segments.items():
        active = _weekly_counts(rng, users, days)
        purchasers = rng.binomial(active.astype(int), 0.08).astype(float)
        parts.append(
            pd.DataFrame(
                {
                    "metric_date": _dates(days),
                    "dimension": "platform",
                    "segment": segment,
                    "active_users": active,
                    "new_users": rng.poisson(0.1 * active).astype(float),
                    "sessions": rng.poisson(1.3 * active).astype(float),
                    "events": rng.poisson(8 * active).astype(float),
                    "purchasers": purchasers,
                    "revenue": purchasers * rng.lognormal(3.8, 0.3, days),
                }
            )
        )
    segments_frame = pd.concat(parts)
    total = segments_frame.groupby("metric_date", as_index=False).sum(numeric_only=True)
    total["dimension"], total["segment"] = "all", "all"
    return _with_rates(pd.concat([total, segments_frame], ignore_index=True))


def _with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["conversion_rate"] = frame["purchasers"] / frame["active_users"].where(
        frame["active_users"] > 0
    )
    frame["conversion_rate"] = frame["conversion_rate"].fillna(0.0)
    return frame[DAILY_METRIC_COLUMNS]


def _as_daily_metrics(active: np.ndarray) -> pd.DataFrame:
    """A one-segment daily_metrics frame whose active users are `active`."""
    frame = pd.DataFrame(
        {"metric_date": _dates(len(active)), "dimension": "all", "segment": "all"}
    ).assign(
        active_users=active,
        new_users=0.1 * active,
        sessions=1.3 * active,
        events=8 * active,
        purchasers=0.08 * active,
        revenue=4.0 * active,
    )
    return _with_rates(frame)
