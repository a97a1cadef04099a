"""Charts: one way to draw and save a PNG, and the one chart of a metric series.

Every chart uses matplotlib's object API on the Agg canvas (no pyplot: no global state, safe in
worker threads and on servers without a display). The stages draw their own figures with
`new_figure` and write them with `save_png`; `series_chart` is the anomaly chart that both the
anomalies stage and the reports draw.
"""

from __future__ import annotations

import base64
import functools
import inspect
import io
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipelines.formatting import metric_value

P = ParamSpec("P")
# Title positions fixed at the top of the axes (`set_title(..., y=TITLE_Y)`): left to
# matplotlib, every title is moved above whatever sits over the axes, which measures the tick
# labels of each panel at every draw (about 15% of a report chart's cost). Nothing sits above
# our axes, so the title lands where matplotlib would have put it.
TITLE_Y = 1.0


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def fixed_margins(
    figure: Figure,
    left: float,
    right: float,
    bottom: float,
    top: float,
    wspace: float = 0.2,
    hspace: float = 0.2,
) -> None:
    """Margins around the axes in inches, for a chart whose labels have a known size: saved
    with `tight=False`, it skips matplotlib's tight layout, which draws the whole figure once
    more to measure it (about half of a chart's cost)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
        hspace=hspace,
    )


def unlabelled(*axes: Any) -> None:
    """Say that these axes have no axis label (an Axes: its x and y axis; or one Axis).
    Otherwise matplotlib places the empty label clear of the tick labels at every draw,
    measuring them, and those of every axis sharing it (a figure of six panels on one x axis
    measured all six panels' labels for each): about a fifth of the trend chart's cost. Placed
    by hand, an empty label draws nothing."""
    for item in axes:
        for axis in (item.xaxis, item.yaxis) if hasattr(item, "xaxis") else (item,):
            if axis.label.get_text():
                raise ValueError(f"the axis labelled {axis.label.get_text()!r} needs placing")
            axis.set_label_coords(0.5, 0.5)


def save_png(
    figure: Figure, path: Path, *, stamp_software: bool = False, tight: bool = True
) -> bytes:
    """Lay out and write `figure` as a PNG at `path` (folders created); returns its bytes.

    Without the "Software" stamp the same data gives the same bytes whatever the matplotlib
    version; the anomaly charts still carry it, so that their bytes (embedded in reports) stay
    as they were. `tight=False`: the figure has `fixed_margins`.
    """
    png = png_bytes(figure, stamp_software=stamp_software, tight=tight)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return png


def png_bytes(figure: Figure, *, stamp_software: bool = False, tight: bool = True) -> bytes:
    if tight:
        figure.tight_layout()
    buffer = io.BytesIO()
    metadata = None if stamp_software else {"Software": None}
    figure.savefig(buffer, format="png", metadata=metadata)
    return buffer.getvalue()


def reuse_identical_png(draw: Callable[P, None], keep: int = 16) -> Callable[P, None]:
    """`draw` (a chart drawn from its arguments alone into its `path` argument) made to copy the
    PNG it last drew from equal arguments instead of drawing it again.

    A backfill writes hundreds of daily reports in one process, and some of their charts change
    only when a period ends: the week retention curve and the week-cohort heatmap once a week,
    the month curve once a month. Drawing them again is most of a report's chart cost; copying
    the bytes gives the same file. The `keep` most recently drawn charts are remembered, keyed
    by the `repr` of every argument but `path` (equal data built the same way gives the same
    repr; data that merely looks alike misses the cache, it never hits a wrong entry).
    """
    signature = inspect.signature(draw)
    drawn: OrderedDict[str, bytes] = OrderedDict()

    @functools.wraps(draw)
    def draw_or_copy(*args: P.args, **kwargs: P.kwargs) -> None:
        arguments = signature.bind(*args, **kwargs).arguments
        path = Path(arguments.pop("path"))
        key = repr(arguments)
        png = drawn.get(key)
        if png is None:
            draw(*args, **kwargs)
            drawn[key] = path.read_bytes()
            if len(drawn) > keep:
                drawn.popitem(last=False)
        else:
            drawn.move_to_end(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)

    return draw_or_copy


def png_base64(png: bytes) -> str:
    """For a Markdown preview in the Dagster UI: `![name](data:image/png;base64,...)`."""
    return base64.b64encode(png).decode()


def date_axis(axes: Any, days: pd.Series) -> None:
    """Whole days on the x axis: matplotlib would tick a week-long series every 12 hours."""
    span = (days.max() - days.min()).days if len(days) else 0
    locator = mdates.DayLocator(interval=max(1, span // 7)) if span <= 60 else None
    locator = locator or mdates.AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def series_chart(series: Any, path: Path, title: str | None = None) -> Path:
    """A PNG of one metric series: the line, the expected band, anomalous points in red with
    their values.

    `series`: rows of the `anomalies` table for one (metric, dimension, segment), any date range
    (pandas or polars): `metric_date, value, expected, is_anomaly`, optionally `expected_low,
    expected_high, metric, dimension, segment`.
    """
    frame = series.to_pandas() if hasattr(series, "to_pandas") else pd.DataFrame(series)
    frame = frame.copy()
    frame["metric_date"] = pd.to_datetime(frame["metric_date"])
    frame = frame.sort_values("metric_date")
    metric = str(frame["metric"].iloc[0]) if "metric" in frame and len(frame) else "value"
    figure = new_figure(9, 3.6)
    axes = figure.add_subplot()
    days = frame["metric_date"]
    if {"expected_low", "expected_high"} <= set(frame.columns):
        low = pd.to_numeric(frame["expected_low"], errors="coerce")
        high = pd.to_numeric(frame["expected_high"], errors="coerce")
        axes.fill_between(days, low, high, color="tab:blue", alpha=0.15, lw=0, label="normal range")
    expected = pd.to_numeric(frame["expected"], errors="coerce")
    axes.plot(days, expected, color="tab:blue", ls="--", lw=1, label="expected")
    axes.plot(days, frame["value"].astype(float), color="black", lw=1.4, marker=".", label=metric)
    hits = frame[frame["is_anomaly"].fillna(False).astype(bool)]
    axes.scatter(hits["metric_date"], hits["value"], color="red", zorder=3, label="anomaly")
    for day, value in zip(hits["metric_date"], hits["value"], strict=True):
        axes.annotate(
            metric_value(metric, float(value), "label", "n/a"),
            (day, value),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            color="red",
            fontsize=8,
        )
    axes.set_title(title or _series_title(frame, metric), fontsize=10)
    axes.legend(fontsize=8, loc="best")
    axes.grid(alpha=0.3)
    date_axis(axes, days)
    fixed_margins(figure, left=0.75, right=0.15, bottom=0.45, top=0.35)
    unlabelled(axes)
    save_png(figure, path, stamp_software=True, tight=False)
    return Path(path)


def _series_title(frame: pd.DataFrame, metric: str) -> str:
    if not {"dimension", "segment"} <= set(frame.columns) or frame.empty:
        return metric
    dimension, segment = frame["dimension"].iloc[0], frame["segment"].iloc[0]
    return f"{metric} for {'all users' if dimension == 'all' else f'{dimension}={segment}'}"
