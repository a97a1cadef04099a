"""Charts of the flagged series: one PNG per (metric, dimension, segment) with a flagged day,
drawn by `pipelines.charts.series_chart` (line, expected band, anomalies in red)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assets.anomalies.scoring import SERIES_KEY, to_pandas
from pipelines.charts import series_chart
from pipelines.formatting import file_name


def chart_path(folder: Path, metric: str, dimension: str, segment: str) -> Path:
    """`<folder>/<metric>__<dimension>__<segment>.png`; unsafe file-name characters become _."""
    return Path(folder) / ("__".join(file_name(p) for p in (metric, dimension, segment)) + ".png")


def write_anomaly_charts(anomalies: Any, folder: Path, clear: bool = True) -> list[Path]:
    """One chart per (metric, dimension, segment) with a flagged day in `anomalies`; with
    `clear`, charts of earlier runs are removed first (a run that scored only new days keeps
    them and redraws the series it flagged)."""
    frame = to_pandas(anomalies)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if clear:
        for stale in folder.glob("*.png"):
            stale.unlink()
    if frame.empty:
        return []
    flagged = frame[frame["is_anomaly"].astype(bool)][SERIES_KEY].drop_duplicates()
    series_of = dict(list(frame.groupby(SERIES_KEY)))
    return [
        series_chart(series_of[key], chart_path(folder, *key))
        for key in flagged.itertuples(index=False, name=None)
    ]
