"""Stage: anomalies. `daily_metrics` -> `anomalies` and `anomaly_incidents` (CONTRACT §3),
`anomaly_evaluation`, charts, alerts.

Scoring (`scoring`, with its sentences in `explain`; `incremental` decides which days to score),
incidents (`incidents`), evaluation (`evaluation`), charts (`charts`) and alerts (`alerts`) are
plain functions the benchmark and the tests call too; the assets read, call them, write with the
models under sql/marts/anomal*.sql, and describe.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import polars as pl

from assets.anomalies.alerts import (
    deliver,
    delivery_journal,
    pending_incidents,
    record_deliveries,
    unrecorded,
)
from assets.anomalies.charts import write_anomaly_charts
from assets.anomalies.evaluation import EVALUATION_COLUMNS, evaluate_anomalies, load_labels
from assets.anomalies.incidents import INCIDENT_COLUMNS, group_incidents
from assets.anomalies.incremental import Update, score_changed_days, settings_key
from assets.anomalies.scoring import ANOMALY_COLUMNS, SERIES_KEY
from pipelines import journal
from pipelines.errors import EventpulseError
from pipelines.previews import markdown_table
from pipelines.resources import Warehouse
from pipelines.settings import AnomalySettings, Settings
from pipelines.sql import run_sql_file
from pipelines.warehouse import WRITER_ASSET

PREVIEW_ROWS = 20
# A full scoring (first run, other settings, another scorer version) starts every table afresh,
# the kept versions of earlier scores included: their columns may be another version's.
# What a scoring run replaces from its first scored day on (journaled by day for the standby).
DATED_TABLES = ("anomalies", "anomaly_incidents", "anomaly_inputs", "anomaly_days")
FULL_SCORING_DROPS = (
    "anomalies",
    "anomaly_inputs",
    "anomaly_incidents",
    "anomaly_days",
    "anomaly_history",
    "anomaly_incident_history",
)


def require_daily_metrics(conn: duckdb.DuckDBPyConnection) -> None:
    """Scoring reads `daily_metrics`: say how to build it when it is missing."""
    if not _has_table(conn, "daily_metrics"):
        raise EventpulseError(
            "The warehouse has no daily_metrics table yet; run `eventpulse run` to build it."
        )


def read_anomalies(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if not _has_table(conn, "anomalies"):
        raise EventpulseError(
            "The warehouse has no anomalies table yet; run `eventpulse run` to build it."
        )
    return conn.sql("select * from anomalies").df()


def write_anomalies(
    conn: duckdb.DuckDBPyConnection, update: Update, settings: AnomalySettings
) -> pd.DataFrame:
    """Store one scoring run in one transaction: its rows of `anomalies` and their incidents
    (`anomaly_incidents`) from `update.score_from` on, the inputs they were scored from and the
    settings; everything when `update.full`. Returns the incident rows written."""
    incidents = group_incidents(update.rows) if not update.rows.empty else _no_incidents()
    if update.score_from is None:
        return incidents
    params = {"score_from": update.score_from, "known_through": _last_arrival_day(conn)}
    conn.register("scored", update.rows.reindex(columns=ANOMALY_COLUMNS))
    conn.register("incident_rows_frame", incidents.reindex(columns=INCIDENT_COLUMNS))
    try:
        conn.execute("begin")
        if update.full:
            for table in FULL_SCORING_DROPS:
                conn.execute(f"drop table if exists {table}")  # names from this code, not input
                journal.record_whole(conn, table)
        else:
            # The rows about to be replaced, for reports written again later (as of their day).
            run_sql_file(conn, "marts/anomaly_history.sql", params)
            journal.record_days_from(conn, DATED_TABLES, update.score_from)
        run_sql_file(conn, "marts/anomalies.sql", params)
        run_sql_file(conn, "marts/anomaly_incidents.sql", params)
        run_sql_file(conn, "marts/anomaly_days.sql", params)
        run_sql_file(conn, "marts/anomaly_inputs.sql", params)
        run_sql_file(conn, "marts/anomaly_state.sql", {"settings": settings_key(settings)})
        if not update.full:
            journal.record_days_from(conn, DATED_TABLES, update.score_from)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("scored")
        conn.unregister("incident_rows_frame")
    return incidents


def _last_arrival_day(conn: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The last arrival day loaded: what a scoring run knew (None without events)."""
    if not _has_table(conn, "event_copies"):
        return None
    return conn.execute("select max(arrival_date) from event_copies").fetchall()[0][0]


def _no_incidents() -> pd.DataFrame:
    return pd.DataFrame(columns=INCIDENT_COLUMNS)


def read_series(conn: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """Every stored row of the series in `keys` (metric, dimension, segment): what a chart draws."""
    conn.register("chart_keys", keys[SERIES_KEY].drop_duplicates())
    try:
        return conn.sql(
            "select a.* from anomalies a join chart_keys k using (metric, dimension, segment) "
            "order by metric_date"
        ).df()
    finally:
        conn.unregister("chart_keys")


def write_evaluation(conn: duckdb.DuckDBPyConnection, evaluation: pd.DataFrame) -> int:
    """Replace the `anomaly_evaluation` table in one transaction; returns the row count."""
    return _replace(
        conn, "marts/anomaly_evaluation.sql", evaluation.reindex(columns=EVALUATION_COLUMNS)
    )


def charts_dir(settings: Settings) -> Path:
    return settings.reports_dir / "anomalies"


@dg.asset(
    group_name="anomalies", kinds={"duckdb", "python"}, deps=["daily_metrics"], **WRITER_ASSET
)
def anomalies(warehouse: Warehouse) -> dg.MaterializeResult:
    """Every day, metric and segment of daily_metrics scored for anomalies: value, expected
    (same-weekday baseline from past days only), score 0..1 (an IsolationForest fitted on
    earlier days), is_anomaly, direction and a one-sentence explanation (CONTRACT §3); the
    flagged rows grouped into incidents (anomaly_incidents). Each day is scored once: a run
    scores only new days and days whose metrics changed. Also writes one chart per series
    flagged in the days scored under reports/anomalies/."""
    settings = warehouse.settings()
    with warehouse.writer() as conn:
        require_daily_metrics(conn)
        update = score_changed_days(conn, settings.anomalies)
        incidents = write_anomalies(conn, update, settings.anomalies)
        flagged = update.rows[update.rows["is_anomaly"].astype(bool)] if len(update.rows) else None
        series = read_series(conn, flagged) if flagged is not None and len(flagged) else None
        total = conn.sql("select count(*) from anomalies").fetchall()[0][0]
    folder = charts_dir(settings)
    charts = write_anomaly_charts(
        series if series is not None else pd.DataFrame(columns=ANOMALY_COLUMNS),
        folder,
        clear=update.full,
    )
    flagged = flagged if flagged is not None else pd.DataFrame(columns=ANOMALY_COLUMNS)
    scored_from = update.score_from.isoformat() if update.score_from else "nothing new"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "rows_scored": len(update.rows),
            "scored_from": "every day" if update.full else scored_from,
            "flagged": len(flagged),
            "incidents": int(incidents["incident_id"].nunique()) if len(incidents) else 0,
            "charts": len(charts),
            "charts_folder": dg.MetadataValue.path(str(folder)),
            "flagged_preview": dg.MetadataValue.md(_flagged_preview(flagged)),
        }
    )


@dg.asset(group_name="anomalies", kinds={"duckdb", "python"}, deps=[anomalies], **WRITER_ASSET)
def anomaly_evaluation(warehouse: Warehouse) -> dg.MaterializeResult:
    """Precision, recall, F1 and ROC AUC of the anomalies against labelled incidents
    (demo_labels.json), overall and per metric, at the (date, dimension, segment) level.
    Empty when there are no labels."""
    settings = warehouse.settings()
    labels_path = settings.labels_path
    if labels_path.exists():
        with warehouse.reader() as conn:
            scored = read_anomalies(conn)
        evaluation = evaluate_anomalies(scored, load_labels(labels_path))
        source = str(labels_path)
    else:
        evaluation = pd.DataFrame(columns=EVALUATION_COLUMNS)
        source = f"no labels: {labels_path} does not exist (`eventpulse generate` writes one)"
    with warehouse.writer() as conn:
        rows = write_evaluation(conn, evaluation)
    metadata: dict[str, Any] = {"dagster/row_count": rows, "labels": source}
    if rows:
        overall = evaluation.iloc[0]
        metadata |= {name: _metric_value(overall[name]) for name in ("precision", "recall", "f1")}
        metadata["roc_auc"] = _metric_value(overall["roc_auc"])
        metadata["evaluation"] = dg.MetadataValue.md(_markdown(evaluation.round(3)))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name="anomalies",
    kinds={"python"},
    deps=[anomalies, "daily_report"],
)
def anomaly_alerts(warehouse: Warehouse) -> dg.MaterializeResult:
    """Each new incident of anomaly_incidents POSTed once to alerts.webhook_url as JSON with a
    Slack-compatible text (CONTRACT §3). Deliveries are remembered in alert_deliveries, so a
    re-run never posts one twice; a failed delivery is tried again on the next run and never
    fails this one. Off (nothing posted) when no webhook_url is set."""
    settings = warehouse.settings()
    url = settings.alerts.webhook_url
    if not url:
        return dg.MaterializeResult(metadata={"alerts": "off: no alerts.webhook_url set"})
    journal = delivery_journal(settings.home)
    with warehouse.reader() as conn:
        pending = pending_incidents(conn, journal)
        lost_records = unrecorded(conn, journal)
    # Posted outside the write lock: a hanging receiver must not hold up other writers.
    deliveries = deliver(url, pending, settings.reports_dir, journal=journal)
    if deliveries or lost_records:
        with warehouse.writer() as conn:
            record_deliveries(conn, lost_records + deliveries)
    failed = [d for d in deliveries if not d.delivered]
    waiting = (pending["incident_id"].nunique() if len(pending) else 0) - sum(
        d.delivered for d in deliveries
    )
    return dg.MaterializeResult(
        metadata={
            "delivered": sum(d.delivered for d in deliveries),
            "waiting": int(waiting),
            # The kind of failure only: the URL is a secret and never appears here.
            "last_error": failed[0].error if failed else "none",
        }
    )


def _replace(conn: duckdb.DuckDBPyConnection, model: str, frame: pd.DataFrame) -> int:
    """Run `model` (sql/<model>) on `frame`, registered as `scored`, in one transaction."""
    # Registered explicitly: replacement scans are off (python_enable_replacements=False).
    conn.register("scored", frame)
    try:
        conn.execute("begin")
        run_sql_file(conn, model)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("scored")
    return len(frame)


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = conn.execute(
        "select count(*) from information_schema.tables where table_name = $name",
        {"name": name},
    ).fetchall()
    return found[0][0] > 0


def _flagged_preview(flagged: pd.DataFrame) -> str:
    if flagged.empty:
        return "No anomalies flagged."
    latest = flagged.sort_values(["metric_date", "score"], ascending=[False, False])
    preview = latest.head(PREVIEW_ROWS).assign(
        metric_date=lambda f: pd.to_datetime(f["metric_date"]).dt.strftime("%Y-%m-%d"),
        score=lambda f: f["score"].round(2),
    )
    columns = ["metric_date", "metric", "dimension", "segment", "score", "explanation"]
    more = (
        f"\n\n{len(flagged) - PREVIEW_ROWS} more in the table."
        if len(flagged) > PREVIEW_ROWS
        else ""
    )
    return _markdown(preview[columns]) + more


def _markdown(frame: pd.DataFrame) -> str:
    return markdown_table(pl.from_pandas(frame))


def _metric_value(value: float) -> dg.MetadataValue:
    # Dagster metadata cannot hold NaN (a metric without labels or without both classes).
    return dg.MetadataValue.float(float(value)) if pd.notna(value) else dg.MetadataValue.null()
