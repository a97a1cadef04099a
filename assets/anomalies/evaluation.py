"""How well the anomalies match labelled incidents (`demo_labels.json`): precision, recall, F1
and ROC AUC overall and per metric, the rows of `anomaly_evaluation`. Plain functions, no Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from assets.anomalies.scoring import to_pandas
from pipelines.errors import EventpulseError

EVALUATION_COLUMNS = [
    "metric",
    "labelled",
    "flagged",
    "true_positives",
    "false_positives",
    "false_negatives",
    "precision",
    "recall",
    "f1",
    "roc_auc",
]


def load_labels(path: Path) -> list[dict[str, Any]]:
    """Labelled incidents (`demo_labels.json`): a JSON list of {date, dimension, segment,
    metric, kind}."""
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise EventpulseError(
            f"{path} is not valid JSON ({exc}); regenerate it with `eventpulse generate`."
        ) from None
    if not isinstance(raw, list):
        raise EventpulseError(
            f"{path} must hold a list of labels; regenerate it with `eventpulse generate`."
        )
    return [{**label, "date": str(label["date"])[:10]} for label in raw]


def evaluate_anomalies(anomalies: Any, labels: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Precision, recall, F1 and ROC AUC overall and per metric, per (date, dimension, segment).

    - Recall: labelled cells flagged at their own segment.
    - Precision: a flagged cell is right when it is labelled, or when it is `all` on a day with
      an incident (an incident in one segment moves the total too).
    - ROC AUC ranks cells by their highest score; unlabelled `all` cells on incident days are
      left out, being neither clearly positive nor negative.
    Per metric, only that metric's rows and labels count.
    """
    frame = to_pandas(anomalies).copy()
    frame["date"] = pd.to_datetime(frame["metric_date"]).dt.strftime("%Y-%m-%d")
    metrics = sorted(set(frame["metric"]) | {str(label["metric"]) for label in labels})
    rows = [_evaluate(frame, list(labels), "overall")]
    rows += [
        _evaluate(frame[frame["metric"] == m], [lb for lb in labels if lb["metric"] == m], m)
        for m in metrics
    ]
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)


def _evaluate(frame: pd.DataFrame, labels: list[Mapping[str, Any]], metric: str) -> dict:
    from sklearn.metrics import roc_auc_score  # imported when needed, as in scoring.py

    positive = {(str(lb["date"])[:10], lb["dimension"], lb["segment"]) for lb in labels}
    incident_days = {cell[0] for cell in positive}
    cells = frame.groupby(["date", "dimension", "segment"]).agg(
        score=("score", "max"), flagged=("is_anomaly", "any")
    )
    flagged = {cell for cell, hit in cells["flagged"].items() if hit}
    right = {c for c in flagged if c in positive or (c[1] == "all" and c[0] in incident_days)}
    precision = len(right) / len(flagged) if flagged else float("nan")
    recall = len(positive & flagged) / len(positive) if positive else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    truth, score = [], []
    for cell, value in cells["score"].items():
        if cell not in positive and cell[1] == "all" and cell[0] in incident_days:
            continue
        truth.append(cell in positive)
        score.append(value)
    both_classes = 0 < sum(truth) < len(truth)
    return {
        "metric": metric,
        "labelled": len(positive),
        "flagged": len(flagged),
        "true_positives": len(right),
        "false_positives": len(flagged) - len(right),
        "false_negatives": len(positive - flagged),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc_score(truth, score) if both_classes else float("nan"),
    }
