"""The reports' own charts: funnel bars, retention curves and the week-cohort heatmap.

Each function draws one PNG from numbers the report also prints as a table. The anomaly charts
are not here: the reports draw them with `pipelines.charts.series_chart`, the chart the anomalies
stage draws too. PNGs carry no "Software" stamp, so the same data gives the same bytes, and a
chart asked again with the data it was last drawn from is copied, not drawn again
(`reuse_identical_png`: in a backfill the retention curves and the heatmap change once a period).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from pipelines.charts import (
    TITLE_Y,
    fixed_margins,
    new_figure,
    reuse_identical_png,
    save_png,
    unlabelled,
)

BLUE = "#1f77b4"
PARTIAL_GREY = "#d9d9d9"  # a period still running: grey and hatched, never a plain value


@reuse_identical_png
def funnel_chart(
    steps: Sequence[str],
    users: dict[int, int],
    title: str,
    path: Path,
    *,
    complete: bool = True,
) -> None:
    """Users reaching each step (1-based `users` keys) with the share of the first step; bars of
    entries whose conversion window is still open (`complete` False) are grey and hatched."""
    counts = [users.get(i, 0) for i in range(1, len(steps) + 1)]
    figure = _funnel_figures.get(tuple(steps))
    if figure is None:
        figure = _funnel_figures[tuple(steps)] = new_funnel_figure(steps)
    save_png(funnel_figure(counts, title, complete, figure), path, tight=False)


# This process's funnel figure of each list of steps, drawn again with each report's bars: a
# backfill draws every funnel once per report, and setting the figure up costs about as much
# as drawing its bars. The PNG has the bytes a new figure gives (tests/reports/test_figures.py).
_funnel_figures: dict[tuple[str, ...], Figure] = {}


def new_funnel_figure(steps: Sequence[str]) -> Figure:
    """The funnel chart of `steps` without its bars and title."""
    fig = new_figure(7, 3.2)
    ax = fig.subplots()
    ax.set_xticks(range(len(steps)), list(steps), fontsize=8)
    ax.set_ylabel("users")
    fixed_margins(fig, left=0.85, right=0.15, bottom=0.4, top=0.35)
    unlabelled(ax.xaxis)
    return fig


def funnel_figure(counts: list[int], title: str, complete: bool, figure: Figure) -> Figure:
    """`figure` (from `new_funnel_figure`, of as many steps as `counts`) with these bars and
    this title, and nothing of the ones drawn before."""
    ax = figure.axes[0]
    for container in list(ax.containers):
        container.remove()
    for text in list(ax.texts):
        text.remove()
    first = counts[0] or 1
    style = (
        {"color": BLUE}
        if complete
        else {"color": PARTIAL_GREY, "hatch": "//", "edgecolor": "#808080"}
    )
    bars = ax.bar(range(len(counts)), counts, **style)
    for bar, count in zip(bars, counts, strict=True):
        ax.annotate(
            f"{count}\n{count / first:.1%}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylim(0, max(counts + [1]) * 1.3)
    ax.set_title(title, fontsize=9, y=TITLE_Y)
    return figure


@reuse_identical_png
def retention_chart(
    periods: Sequence[int], rates: Sequence[float | None], granularity: str, path: Path
) -> None:
    """Retention rate (a share, None drawn as 0) by period number since the first event."""
    figure = _retention_figures.get(granularity)
    if figure is None:
        figure = _retention_figures[granularity] = new_retention_figure(granularity)
    save_png(retention_figure(periods, rates, figure), path, tight=False)


# This process's retention figure of each granularity, drawn again with each report's curve:
# a backfill draws the day curve once per report, and setting the figure up costs about as
# much as drawing it. The PNG has the bytes a new figure gives (tests/reports/test_figures.py).
_retention_figures: dict[str, Figure] = {}


def new_retention_figure(granularity: str) -> Figure:
    """The retention chart of `granularity` without its curve."""
    fig = new_figure(7, 2.8)
    ax = fig.subplots()
    ax.plot([], [], marker="o", markersize=3, color=BLUE)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{granularity}s since first event")
    ax.set_ylabel("retained %")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.set_title(f"Retention by {granularity}", fontsize=9, y=TITLE_Y)
    fixed_margins(fig, left=0.7, right=0.15, bottom=0.5, top=0.3)
    return fig


def retention_figure(
    periods: Sequence[int], rates: Sequence[float | None], figure: Figure
) -> Figure:
    """`figure` (from `new_retention_figure`) with the curve of `periods` and `rates`."""
    (ax,) = figure.axes
    (line,) = ax.lines
    line.set_data(list(periods), [(rate or 0) * 100 for rate in rates])
    ax.set_xlim(-0.5, max(periods) + 0.5)  # one period alone would get a fractional axis
    return figure


def cohort_heatmap(
    starts: list[dt.date],
    matrix: dict[dt.date, list[float | None]],
    width: int,
    path: Path,
    running: Collection[tuple[dt.date, int]] = (),
) -> None:
    """One row per cohort week (`starts`), one column per week since: % of its users active.
    Cells of weeks still running (`running`: (cohort start, week index)) are hatched grey and
    carry no value."""
    grid = [
        [
            float("nan") if v is None or (s, i) in running else v * 100
            for i, v in enumerate(matrix[s])
        ]
        for s in starts
    ]
    # Only what is drawn: a running cell's value changes every day, its hatching once a week.
    running_cells = sorted((starts.index(s), i) for s, i in running if s in starts)
    draw_cohort_heatmap([s.isoformat() for s in starts], grid, width, running_cells, path)


@reuse_identical_png
def draw_cohort_heatmap(
    rows: list[str], grid: list[list[float]], width: int, running: list[tuple[int, int]], path: Path
) -> None:
    """`grid` (NaN: no value) with one labelled row per cohort; `running` (row, column) cells
    hatched grey."""
    shape = (len(rows), width)
    figure = _heatmap_figures.get(shape)
    if figure is None:
        figure = _heatmap_figures[shape] = new_heatmap_figure(*shape)
    save_png(heatmap_figure(rows, grid, running, figure), path, tight=False)


# This process's heatmap figure of each shape (rows, weeks), drawn again with each report's
# cells: late events change a past week's cells for days after it ended, so a backfill draws
# the heatmap most days, and its axes, colour bar and ticks cost about as much as its cells.
# The PNG has the bytes a new figure gives (tests/reports/test_figures.py).
_heatmap_figures: dict[tuple[int, int], Figure] = {}


def new_heatmap_figure(rows: int, width: int) -> Figure:
    """The heatmap of `rows` cohorts and `width` weeks without its cells and row labels."""
    fig = new_figure(7, 0.9 + 0.32 * rows)
    ax = fig.subplots()
    image = ax.imshow(
        [[float("nan")] * width] * rows, aspect="auto", cmap="Blues", vmin=0, vmax=100
    )
    ax.set_xticks(range(width), [f"W{i}" for i in range(width)], fontsize=7)
    ax.set_title("Week cohorts: % of users active in week N", fontsize=9, y=TITLE_Y)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.03)
    fixed_margins(fig, left=0.8, right=0.45, bottom=0.3, top=0.3)
    unlabelled(ax, colorbar.ax)
    return fig


def heatmap_figure(
    rows: list[str], grid: list[list[float]], running: list[tuple[int, int]], figure: Figure
) -> Figure:
    """`figure` (from `new_heatmap_figure`, of this shape) with these cells and row labels, and
    nothing of the ones drawn before."""
    ax = figure.axes[0]
    for artist in [*ax.patches, *ax.texts]:
        artist.remove()
    for row, index in running:
        ax.add_patch(
            Rectangle(
                (index - 0.5, row - 0.5),
                1,
                1,
                facecolor=PARTIAL_GREY,
                hatch="//",
                edgecolor="#808080",
                linewidth=0,
            )
        )
    (image,) = ax.images
    image.set_data(grid)
    for y, cells in enumerate(grid):
        for x, value in enumerate(cells):
            if value == value:  # not NaN
                color = "white" if value > 60 else "black"
                ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    return figure
