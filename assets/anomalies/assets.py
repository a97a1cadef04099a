"""Stage: anomalies. `daily_metrics` -> `anomalies` (CONTRACT §3), `anomaly_evaluation`, charts.

Scoring (`scoring`, with its sentences in `explain`), evaluation (`evaluation`) and charts
(`charts`) are plain functions the benchmark and the tests call too; the assets read, call them,
write with the models sql/marts/anomalies.sql and sql/marts/anomaly_evaluation.sql, and describe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import polars as pl

from assets.anomalies.charts import write_anomaly_charts
from assets.anomalies.evaluation import EVALUATION_COLUMNS, evaluate_anomalies, load_labels
from assets.anomalies.scoring import ANOMALY_COLUMNS, score_anomalies
from pipelines.errors import EventpulseError
from pipelines.previews import markdown_table
from pipelines.resources import Warehouse
from pipelines.settings import Settings
from pipelines.sql import run_sql_file

PREVIEW_ROWS = 20


def read_daily_metrics(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The whole `daily_metrics` table (the scorer needs every day's history)."""
    if not _has_table(conn, "daily_metrics"):
        raise EventpulseError(
            "The warehouse has no daily_metrics table yet; run `eventpulse run` to build it."
        )
    return conn.sql("select * from daily_metrics order by metric_date, dimension, segment").df()


def read_anomalies(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if not _has_table(conn, "anomalies"):
        raise EventpulseError(
            "The warehouse has no anomalies table yet; run `eventpulse run` to build it."
        )
    return conn.sql("select * from anomalies").df()


def write_anomalies(conn: duckdb.DuckDBPyConnection, scored: pd.DataFrame) -> int:
    """Replace the `anomalies` table with `scored` in one transaction; returns the row count."""
    return _replace(conn, "marts/anomalies.sql", scored.reindex(columns=ANOMALY_COLUMNS))


def write_evaluation(conn: duckdb.DuckDBPyConnection, evaluation: pd.DataFrame) -> int:
    """Replace the `anomaly_evaluation` table in one transaction; returns the row count."""
    return _replace(
        conn, "marts/anomaly_evaluation.sql", evaluation.reindex(columns=EVALUATION_COLUMNS)
    )


def charts_dir(settings: Settings) -> Path:
    return settings.reports_dir / "anomalies"


@dg.asset(
    group_name="anomalies",
    kinds={"duckdb", "python"},
    deps=["daily_metrics"],
    pool="warehouse",
)
def anomalies(warehouse: Warehouse) -> dg.MaterializeResult:
    """Every day, metric and segment of daily_metrics scored for anomalies: value, expected
    (same-weekday baseline from past days only), score 0..1 (an IsolationForest fitted on
    earlier days), is_anomaly, direction and a one-sentence explanation (CONTRACT §3). Also
    writes one chart per flagged series under reports/anomalies/."""
    settings = warehouse.settings()
    with warehouse.reader() as conn:
        daily = read_daily_metrics(conn)
    scored = score_anomalies(daily, settings.anomalies)
    with warehouse.writer() as conn:
        rows = write_anomalies(conn, scored)
    charts = write_anomaly_charts(scored, charts_dir(settings))
    flagged = scored[scored["is_anomaly"].astype(bool)]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "flagged": len(flagged),
            "charts": len(charts),
            "charts_folder": dg.MetadataValue.path(str(charts_dir(settings))),
            "flagged_preview": dg.MetadataValue.md(_flagged_preview(flagged)),
        }
    )


@dg.asset(
    group_name="anomalies",
    kinds={"duckdb", "python"},
    deps=[anomalies],
    pool="warehouse",
)
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
