"""What a product manager looks for first (issue 16, item 9): the headline metrics over the last
six weeks against their expected band, and the period broken down by platform and channel.

Both read `daily_metrics` only. The expected band of a day is the mean of the 28 days before it
plus or minus two standard deviations (population), from at least 7 of those days: a plain,
stated rule a reader can check by hand, not the anomaly model (whose flags the anomaly section
shows).
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import matplotlib.dates as mdates

from assets.reports.headline import METRIC_LABELS, value_text
from assets.reports.layout import MISSING, ReportFigure, Section, Table
from pipelines.charts import TITLE_Y, fixed_margins, new_figure, save_png, unlabelled
from pipelines.formatting import percent
from pipelines.settings import DEFAULT_DIMENSIONS, PROPERTY_DIMENSION_PREFIX

if TYPE_CHECKING:  # build.py imports this module; Period is only read here
    from matplotlib.figure import Figure

    from assets.reports.build import Period

TREND_DAYS = 42  # six weeks drawn
BAND_DAYS = 28  # days before a day that give its expected band
BAND_MIN_DAYS = 7  # fewer days of history: no band
BAND_WIDTH = 2.0  # standard deviations either side of the mean
TREND_METRICS = (
    "active_users",
    "new_users",
    "sessions",
    "purchasers",
    "revenue",
    "conversion_rate",
)
BREAKDOWN_DIMENSIONS = DEFAULT_DIMENSIONS  # the configured `dimensions` (CONTRACT §1)


@dataclass(frozen=True)
class TrendPoint:
    day: dt.date
    value: float | None
    low: float | None  # the expected band; None without enough history
    high: float | None


def expected_band(history: list[float]) -> tuple[float | None, float | None]:
    """Mean ± BAND_WIDTH population standard deviations of the days before (None when fewer
    than BAND_MIN_DAYS)."""
    return _expected_band(tuple(history))


# A backfill's consecutive reports ask again for the bands of 41 of their 42 days (exact, so
# slow: `pstdev` sums fractions), from equal histories unless late events changed them.
@functools.lru_cache(maxsize=4 * TREND_DAYS * len(TREND_METRICS))
def _expected_band(history: tuple[float, ...]) -> tuple[float | None, float | None]:
    if len(history) < BAND_MIN_DAYS:
        return None, None
    mean = statistics.fmean(history)
    spread = BAND_WIDTH * statistics.pstdev(history)
    return mean - spread, mean + spread


def metric_trends(conn: duckdb.DuckDBPyConnection, end: dt.date) -> dict[str, list[TrendPoint]]:
    """Per metric, the TREND_DAYS days ending on `end` with each day's expected band."""
    first = end - dt.timedelta(days=TREND_DAYS + BAND_DAYS - 1)
    result = conn.execute(
        f"select metric_date, {', '.join(TREND_METRICS)} from daily_metrics "
        "where dimension = 'all' and segment = 'all' and metric_date between $first and $end "
        "order by metric_date",
        {"first": first, "end": end},
    )
    rows = {row[0]: row[1:] for row in result.fetchall()}
    shown = [end - dt.timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    trends: dict[str, list[TrendPoint]] = {}
    for position, metric in enumerate(TREND_METRICS):
        points = []
        for day in shown:
            before = [day - dt.timedelta(days=n) for n in range(BAND_DAYS, 0, -1)]
            history = [
                float(rows[d][position])
                for d in before
                if d in rows and rows[d][position] is not None
            ]
            value = rows[day][position] if day in rows else None
            low, high = expected_band(history)
            points.append(TrendPoint(day, None if value is None else float(value), low, high))
        trends[metric] = points
    return trends


def trend_section(
    conn: duckdb.DuckDBPyConnection, period: Period, currency: str, figures_dir: Path
) -> Section:
    section = Section("trends", "Six-week trends")
    trends = metric_trends(conn, period.end)
    section.notes.append(
        f"The headline metrics over the {TREND_DAYS} days to {period.end.isoformat()} (all "
        f"users). The shaded band is what was expected: the mean of the {BAND_DAYS} days before "
        f"each day, ± {BAND_WIDTH:g} standard deviations; a point outside it is unusual."
    )
    path = figures_dir / "trends.png"
    trend_chart(trends, path)
    table = Table(columns=["Day", *(METRIC_LABELS[m] for m in TREND_METRICS)])
    for index, day in enumerate(p.day for p in trends[TREND_METRICS[0]]):
        table.rows.append(
            [
                f"{day.isoformat()} ({day:%a})",
                *(_with_band(m, trends[m][index], currency) for m in TREND_METRICS),
            ]
        )
    section.figures.append(
        ReportFigure(f"{figures_dir.name}/{path.name}", "Headline metrics and expected band", table)
    )
    return section


def _with_band(metric: str, point: TrendPoint, currency: str) -> str:
    value = value_text(metric, point.value, currency)
    if point.low is None or point.high is None:
        return value
    low = value_text(metric, max(point.low, 0.0), currency)
    return f"{value} (expected {low} – {value_text(metric, point.high, currency)})"


def trend_chart(trends: dict[str, list[TrendPoint]], path: Path) -> None:
    save_png(_reused_trend_figure(trends), path, tight=False)


_reused_figures: list[Figure] = []  # this process's trend figure, drawn again for each report


def _reused_trend_figure(trends: dict[str, list[TrendPoint]]) -> Figure:
    """The trend figure of `trends`, drawn on this process's previous one: setting up six
    panels costs about as much as drawing them, and a backfill draws hundreds of these charts.
    The PNG has the bytes a new figure gives (tests/reports/test_trends.py)."""
    if not _reused_figures:
        _reused_figures.append(new_trend_figure())
    return trend_figure(trends, _reused_figures[0])


def new_trend_figure() -> Figure:
    """Six empty panels, one per headline metric, sharing the x axis."""
    figure = new_figure(9, 4.4)
    axes_grid = figure.subplots(3, 2, sharex=True)
    for axes, metric in zip(axes_grid.flat, TREND_METRICS, strict=True):
        unit = " (%)" if metric == "conversion_rate" else ""
        axes.set_title(METRIC_LABELS[metric] + unit, fontsize=9, y=TITLE_Y)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    for axes in axes_grid[-1]:
        # Weekly ticks on Mondays: six weeks of days would otherwise crowd the axis.
        locator = mdates.WeekdayLocator(byweekday=mdates.MO)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fixed_margins(figure, left=0.5, right=0.15, bottom=0.35, top=0.25, wspace=0.15, hspace=0.45)
    unlabelled(*figure.axes)
    return figure


def trend_figure(trends: dict[str, list[TrendPoint]], figure: Figure | None = None) -> Figure:
    """The six headline metrics, one panel each, over the same TREND_DAYS days: drawn on
    `figure` (from `new_trend_figure`, its earlier data replaced) or on a new one."""
    figure = figure or new_trend_figure()
    for axes, metric in zip(figure.axes, TREND_METRICS, strict=True):
        for artist in [*axes.lines, *axes.collections]:
            artist.remove()
        axes.relim()  # forget the removed data's limits
        axes.set_autoscaley_on(True)
        points = trends[metric]
        scale = 100.0 if metric == "conversion_rate" else 1.0
        days = [p.day for p in points]
        banded = [p for p in points if p.low is not None and p.high is not None]
        if banded:
            axes.fill_between(
                [p.day for p in banded],
                [max(p.low or 0.0, 0.0) * scale for p in banded],
                [(p.high or 0.0) * scale for p in banded],
                color="#c6dbef",
                linewidth=0,
                label="expected",
            )
        axes.plot(
            days,
            [float("nan") if p.value is None else p.value * scale for p in points],
            color="#1f77b4",
            linewidth=1.4,
            marker="o",
            markersize=2,
        )
        axes.set_ylim(bottom=0)
    # The window is always the days shown, whatever data exists: left to autoscaling, a home's
    # first day (one point) spans years, and drawing a Monday tick per week of them took
    # seconds per report. (The panels share the x axis.)
    shown = [dt.datetime.combine(p.day, dt.time()) for p in trends[TREND_METRICS[0]]]
    if shown:
        half_day = dt.timedelta(hours=12)
        figure.axes[0].set_xlim(shown[0] - half_day, shown[-1] + half_day)
    else:
        figure.axes[0].set_autoscalex_on(True)
    return figure


# --- platform and channel --------------------------------------------------------------------


def breakdown_section(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    currency: str,
    dimensions: tuple[str, ...] = BREAKDOWN_DIMENSIONS,
) -> Section:
    """A table per configured dimension: each segment's activity and its change."""
    names = _listed(dimensions)
    section = Section("breakdown", f"By {names}")
    scope = (
        f"on {period.start.isoformat()}"
        if period.days == 1
        else f"during {period.span} (users: daily average; revenue: total)"
    )
    section.notes.append(
        f"Each {names} {scope} (daily_metrics; a user's segment is the value on "
        "their own events that day, 'unknown' when none was sent"
        + (", 'other' for the less active values" if _has_other(conn, dimensions) else "")
        + "). The change compares with the same days a week earlier."
    )
    week = dt.timedelta(days=7)
    for dimension in dimensions:
        now = _segments(conn, dimension, period.start, period.end)
        before = _segments(conn, dimension, period.start - week, period.end - week)
        if not now:
            continue
        total_active = sum(row["active_users"] for row in now.values()) or None
        table = Table(
            columns=[
                _column_title(dimension),
                "Active users",
                "Share of active",
                "Change vs week before",
                "Purchasers",
                "Conversion",
                "Revenue",
            ]
        )
        ordered = sorted(now.items(), key=lambda item: (-item[1]["active_users"], item[0]))
        for segment, row in ordered:
            earlier = before.get(segment, {}).get("active_users")
            change = f"{(row['active_users'] - earlier) / earlier:+.1%}" if earlier else MISSING
            table.rows.append(
                [
                    segment,
                    value_text("active_users", row["active_users"], currency),
                    percent(
                        row["active_users"] / total_active if total_active else None, 1, MISSING
                    ),
                    change,
                    value_text("purchasers", row["purchasers"], currency),
                    percent(row["conversion_rate"], 2, MISSING),
                    value_text("revenue", row["revenue"], currency),
                ]
            )
        section.tables.append(table)
    if not section.tables:
        section.notes.append(
            f"No {_listed(dimensions, 'or')} rows in daily_metrics for this period."
        )
    return section


def _listed(dimensions: tuple[str, ...], conjunction: str = "and") -> str:
    """ "platform and channel", "platform, channel and country"."""
    if len(dimensions) < 2:
        return "".join(dimensions)
    return f"{', '.join(dimensions[:-1])} {conjunction} {dimensions[-1]}"


def _column_title(dimension: str) -> str:
    """ "Platform"; a property key as it is written (`app_version`)."""
    if dimension.startswith(PROPERTY_DIMENSION_PREFIX):
        return dimension[len(PROPERTY_DIMENSION_PREFIX) :]
    return dimension.title()


def _has_other(conn: duckdb.DuckDBPyConnection, dimensions: tuple[str, ...]) -> bool:
    """Whether some configured dimension folds values into 'other' (CONTRACT §3 Breakdowns)."""
    ((found,),) = conn.execute(
        "select count(*) from daily_metrics "
        "where segment = 'other' and dimension in (select unnest($dimensions::varchar[]))",
        {"dimensions": list(dimensions)},
    ).fetchall()
    return found > 0


def _segments(
    conn: duckdb.DuckDBPyConnection, dimension: str, start: dt.date, end: dt.date
) -> dict[str, dict[str, float]]:
    """Per segment: daily-average active users and purchasers, total revenue, and conversion as
    purchasers / active users over the days."""
    rows = conn.execute(
        "select segment, avg(active_users), avg(purchasers), sum(revenue), "
        "sum(purchasers) / nullif(sum(active_users), 0) from daily_metrics "
        "where dimension = $dimension and metric_date between $start and $end "
        "group by segment",
        {"dimension": dimension, "start": start, "end": end},
    ).fetchall()
    return {
        segment: {
            "active_users": float(active),
            "purchasers": float(purchasers),
            "revenue": float(revenue or 0.0),
            "conversion_rate": None if conversion is None else float(conversion),
        }
        for segment, active, purchasers, revenue, conversion in rows
    }
