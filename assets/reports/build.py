"""Daily and weekly reports from the mart tables (CONTRACT §5): Markdown, HTML and PNG figures.

Dagster-free: the report assets, `eventpulse report` and the tests call these functions with a
DuckDB connection. Every number shown is read from a mart (`daily_metrics`, `funnel_steps`,
`funnel_daily`, `retention`, `cohorts`, `anomalies`) or is a sum/average of mart rows stated as
such, and every figure's numbers are also printed as a table. A section appears only when its
table exists, so a partly built warehouse still gets a report.

Reports hold no generation timestamp: rewriting a report from the same warehouse gives the same
bytes, so re-runs and backfills change nothing downstream (e.g. the RAG corpus).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipelines.charts import series_chart
from pipelines.settings import Funnel, Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MART_TABLES = ("daily_metrics", "funnel_steps", "funnel_daily", "retention", "cohorts", "anomalies")

# Headline metrics (CONTRACT §3 daily_metrics) in display order.
HEADLINE_METRICS = (
    ("active_users", "Active users"),
    ("new_users", "New users"),
    ("sessions", "Sessions"),
    ("purchasers", "Purchasers"),
    ("revenue", "Revenue"),
    ("conversion_rate", "Conversion"),
)
# Metrics whose week value is a sum of the days; the others (distinct users, a ratio) cannot be
# summed across days, so the weekly report shows their daily average instead.
ADDITIVE_METRICS = {"new_users", "sessions", "events", "revenue"}

ANOMALY_WINDOW_DAYS = 28  # days of history drawn around a flagged anomaly
MAX_ANOMALY_CHARTS = 10  # the table still lists every flagged row
COHORT_ROWS = 12  # most recent week cohorts in the heatmap
RETENTION_PERIODS = {"day": 30, "week": 12}  # the mart's own period range (CONTRACT §3)
RETENTION_PERIOD_DAYS = {"day": 1, "week": 7}

RED = "#d62728"
BLUE = "#1f77b4"
GREY = "#7f7f7f"


@dataclass(frozen=True)
class ReportPaths:
    """What one report wrote: the two documents and the figures beside them."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    has_data: bool


@dataclass
class Table:
    """A table shown in both documents: display text plus the exact values behind it."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)


@dataclass
class ReportFigure:
    """A PNG beside the report (path relative to the documents) and the numbers it shows."""

    src: str
    title: str
    table: Table


@dataclass
class Section:
    """One report section: notes (sentences), bullets, tables, then figures with their numbers."""

    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)


@dataclass(frozen=True)
class Period:
    """The days a report covers (inclusive) and where its files go."""

    kind: str  # 'daily' | 'weekly'
    label: str  # '2026-03-05' | '2026-W10'
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def build_daily_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, day: dt.date
) -> ReportPaths:
    """Write `reports/daily/YYYY-MM-DD.md` and `.html` with figures under `YYYY-MM-DD/`."""
    period = Period("daily", day.isoformat(), day, day)
    return _build_report(conn, settings, period)


def build_weekly_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, week_start: dt.date
) -> ReportPaths:
    """Write `reports/weekly/YYYY-Www.md` and `.html` for the Monday week starting `week_start`."""
    monday = week_start - dt.timedelta(days=week_start.weekday())
    year, week, _ = monday.isocalendar()
    period = Period("weekly", f"{year}-W{week:02d}", monday, monday + dt.timedelta(days=6))
    return _build_report(conn, settings, period)


def _build_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, period: Period
) -> ReportPaths:
    out_dir = settings.reports_dir / period.kind
    figures_dir = out_dir / period.label
    # A rewrite starts clean: a figure from an earlier version must not linger beside the new one.
    if figures_dir.exists():
        shutil.rmtree(figures_dir)
    figures_dir.mkdir(parents=True)
    tables = _existing_tables(conn)
    has_data = _has_data(conn, tables, period)
    sections = _sections(conn, settings, period, tables, figures_dir) if has_data else []
    context = {
        "period": period,
        "title": _title(period),
        "has_data": has_data,
        "no_data": _no_data_sentence(period, tables),
        "sections": sections,
    }
    markdown = out_dir / f"{period.label}.md"
    html = out_dir / f"{period.label}.html"
    _write_text(markdown, _render(f"{period.kind}.md.j2", context))
    _write_text(html, _render(f"{period.kind}.html.j2", context))
    figures = tuple(sorted(figures_dir.glob("*.png")))
    if not figures:
        figures_dir.rmdir()
    return ReportPaths(markdown=markdown, html=html, figures=figures, has_data=has_data)


def _title(period: Period) -> str:
    if period.kind == "daily":
        return f"Daily report {period.label} ({period.start:%A})"
    return f"Weekly report {period.label} ({period.start.isoformat()} to {period.end.isoformat()})"


def _no_data_sentence(period: Period, tables: set[str]) -> str:
    what = "this day" if period.kind == "daily" else "this week"
    if "daily_metrics" not in tables:
        return f"No data: the warehouse has no daily_metrics table yet, so {what} has no report."
    return f"No data: no events were recorded on {what} ({_span(period)})."


def _span(period: Period) -> str:
    if period.days == 1:
        return period.start.isoformat()
    return f"{period.start.isoformat()} to {period.end.isoformat()}"


def _sections(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: Period,
    tables: set[str],
    figures_dir: Path,
) -> list[Section]:
    sections = [
        _daily_headline(conn, period) if period.kind == "daily" else _weekly_headline(conn, period)
    ]
    if period.kind == "weekly":
        sections.append(_daily_breakdown(conn, period))
    if {"funnel_steps", "funnel_daily"} & tables:
        sections.append(_funnels(conn, settings.funnels, period, tables, figures_dir))
    if "retention" in tables:
        sections.append(_retention(conn, period, figures_dir))
    if "cohorts" in tables:
        sections.append(_cohorts(conn, period, figures_dir))
    if "anomalies" in tables:
        sections.append(_anomalies(conn, period, figures_dir))
    return sections


# --- reading the marts -------------------------------------------------------------------------


def _existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_schema = 'main' and table_name in $names",
        {"names": list(MART_TABLES)},
    ).fetchall()
    return {name for (name,) in rows}


def _has_data(conn: duckdb.DuckDBPyConnection, tables: set[str], period: Period) -> bool:
    if "daily_metrics" not in tables:
        return False
    (events,) = conn.execute(
        "select coalesce(sum(events), 0) from daily_metrics "
        "where dimension = 'all' and segment = 'all' and metric_date between $start and $end",
        {"start": period.start, "end": period.end},
    ).fetchone()
    return events > 0


def _metrics_by_day(
    conn: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date
) -> dict[dt.date, dict[str, Any]]:
    """The ('all', 'all') rows of daily_metrics between two days, keyed by day."""
    result = conn.execute(
        "select metric_date, active_users, new_users, sessions, events, purchasers, revenue, "
        "conversion_rate from daily_metrics "
        "where dimension = 'all' and segment = 'all' and metric_date between $start and $end "
        "order by metric_date",
        {"start": start, "end": end},
    )
    names = [column[0] for column in result.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in result.fetchall()}


# --- headline ----------------------------------------------------------------------------------


def _daily_headline(conn: duckdb.DuckDBPyConnection, period: Period) -> Section:
    day = period.start
    previous, week_ago = day - dt.timedelta(days=1), day - dt.timedelta(days=7)
    rows = _metrics_by_day(conn, week_ago, day)
    today, prev, last_week = rows.get(day, {}), rows.get(previous, {}), rows.get(week_ago, {})
    table = Table(
        columns=[
            "Metric",
            day.isoformat(),
            f"Previous day ({previous.isoformat()})",
            "Change vs previous day",
            f"Same weekday last week ({week_ago.isoformat()})",
            "Change vs last week",
        ]
    )
    for metric, label in HEADLINE_METRICS:
        value = today.get(metric)
        a, b = prev.get(metric), last_week.get(metric)
        table.rows.append(
            [
                label,
                _fmt(metric, value),
                _fmt(metric, a),
                _change(metric, value, a),
                _fmt(metric, b),
                _change(metric, value, b),
            ]
        )
        table.values.append([metric, value, a, _delta(value, a), b, _delta(value, b)])
    section = Section("headline", "Headline metrics", tables=[table])
    section.notes.append(
        "All users, all platforms and channels (daily_metrics, dimension 'all'); conversion = "
        "purchasers / active users."
    )
    return section


def _weekly_headline(conn: duckdb.DuckDBPyConnection, period: Period) -> Section:
    previous = Period(
        "weekly", "", period.start - dt.timedelta(days=7), period.end - dt.timedelta(days=7)
    )
    this_week = _metrics_by_day(conn, period.start, period.end)
    last_week = _metrics_by_day(conn, previous.start, previous.end)
    table = Table(
        columns=[
            "Metric",
            "Measure",
            f"This week ({_span(period)})",
            f"Previous week ({_span(previous)})",
            "Change",
        ]
    )
    for metric, label in HEADLINE_METRICS:
        measure = "total" if metric in ADDITIVE_METRICS else "daily average"
        value, before = _week_value(this_week, metric), _week_value(last_week, metric)
        table.rows.append(
            [
                label,
                measure,
                _fmt(metric, value),
                _fmt(metric, before),
                _change(metric, value, before),
            ]
        )
        table.values.append([metric, measure, value, before, _delta(value, before)])
    section = Section("headline", "Headline metrics", tables=[table])
    section.notes.append(
        f"Days with data: {len(this_week)} of 7. Totals are sums of the days in daily_metrics; "
        "active users, purchasers and conversion count distinct users per day, so the week shows "
        "their daily average."
    )
    return section


def _week_value(rows: dict[dt.date, dict[str, Any]], metric: str) -> float | None:
    values = [row[metric] for row in rows.values() if row[metric] is not None]
    if not values:
        return None
    total = sum(values)
    return total if metric in ADDITIVE_METRICS else total / len(values)


def _daily_breakdown(conn: duckdb.DuckDBPyConnection, period: Period) -> Section:
    rows = _metrics_by_day(conn, period.start, period.end)
    metrics = [*HEADLINE_METRICS[:4], ("events", "Events"), *HEADLINE_METRICS[4:]]
    table = Table(columns=["Day", *(label for _, label in metrics)])
    for day, row in rows.items():
        table.rows.append([f"{day.isoformat()} ({day:%a})", *(_fmt(m, row[m]) for m, _ in metrics)])
        table.values.append([day, *(row[m] for m, _ in metrics)])
    return Section("days", "Day by day", tables=[table])


# --- funnels -----------------------------------------------------------------------------------


def _funnels(
    conn: duckdb.DuckDBPyConnection,
    funnels: Sequence[Funnel],
    period: Period,
    tables: set[str],
    figures_dir: Path,
) -> Section:
    section = Section("funnels", "Funnels")
    section.notes.append(
        f"Bars: users whose counted attempt entered the funnel {_in_period(period)} (funnel_daily) "
        "and reached each step, with conversion from the first step. The table adds the whole "
        "history (funnel_steps, all segments)."
    )
    names = _unique_names(f"funnel-{_slug(f.name)}" for f in funnels)
    for funnel, name in zip(funnels, names, strict=True):
        period_rows = _funnel_period(conn, funnel, period) if "funnel_daily" in tables else {}
        history = _funnel_history(conn, funnel) if "funnel_steps" in tables else {}
        if not period_rows and not history:
            section.notes.append(
                f'Funnel "{funnel.name}": not computed yet (no rows in the marts).'
            )
            continue
        table = _funnel_table(funnel, period_rows, history)
        path = figures_dir / f"{name}.png"
        entered = period_rows.get(1, 0)
        shown = period_rows if entered else {k: v["users"] for k, v in history.items()}
        scope = (
            _in_period(period) if entered else "over the whole history (none entered this period)"
        )
        _funnel_chart(funnel, shown, f'Funnel "{funnel.name}": users entering {scope}', path)
        section.figures.append(
            ReportFigure(f"{figures_dir.name}/{path.name}", f'Funnel "{funnel.name}"', table)
        )
    return section


def _in_period(period: Period) -> str:
    return f"on {period.start.isoformat()}" if period.days == 1 else f"during {_span(period)}"


def _funnel_period(
    conn: duckdb.DuckDBPyConnection, funnel: Funnel, period: Period
) -> dict[int, int]:
    rows = conn.execute(
        "select step_index, sum(users) from funnel_daily "
        "where funnel = $funnel and entry_date between $start and $end "
        "group by step_index order by step_index",
        {"funnel": funnel.name, "start": period.start, "end": period.end},
    ).fetchall()
    return {int(step): int(users) for step, users in rows}


def _funnel_history(conn: duckdb.DuckDBPyConnection, funnel: Funnel) -> dict[int, dict[str, Any]]:
    result = conn.execute(
        "select step_index, users, conversion_from_first, conversion_from_previous, "
        "median_seconds_from_previous from funnel_steps "
        "where funnel = $funnel and dimension = 'all' and segment = 'all' order by step_index",
        {"funnel": funnel.name},
    )
    names = [column[0] for column in result.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in result.fetchall()}


def _funnel_table(
    funnel: Funnel, period_rows: dict[int, int], history: dict[int, dict[str, Any]]
) -> Table:
    table = Table(
        columns=[
            "Step",
            "Event",
            "Users (period)",
            "Conversion from first (period)",
            "Users (all time)",
            "Conversion from first (all time)",
            "Conversion from previous (all time)",
            "Median time from previous (all time)",
        ]
    )
    first = period_rows.get(1, 0)
    for index, step in enumerate(funnel.steps, start=1):
        users = period_rows.get(index, 0)
        period_rate = users / first if first else None
        past = history.get(index, {})
        table.rows.append(
            [
                str(index),
                step,
                str(users),
                _pct(period_rate),
                _fmt("users", past.get("users")),
                _pct(past.get("conversion_from_first")),
                _pct(past.get("conversion_from_previous")),
                _duration(past.get("median_seconds_from_previous")),
            ]
        )
        table.values.append(
            [
                index,
                step,
                users,
                period_rate,
                past.get("users"),
                past.get("conversion_from_first"),
                past.get("conversion_from_previous"),
                past.get("median_seconds_from_previous"),
            ]
        )
    return table


def _funnel_chart(funnel: Funnel, users: dict[int, int], title: str, path: Path) -> None:
    counts = [users.get(i, 0) for i in range(1, len(funnel.steps) + 1)]
    first = counts[0] or 1
    fig = Figure(figsize=(7, 3.2), dpi=100)
    ax = fig.subplots()
    bars = ax.bar(range(len(counts)), counts, color=BLUE)
    for bar, count in zip(bars, counts, strict=True):
        ax.annotate(
            f"{count}\n{count / first:.1%}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(counts)), list(funnel.steps), fontsize=8)
    ax.set_ylabel("users")
    ax.set_ylim(0, max(counts + [1]) * 1.3)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


# --- retention and cohorts ---------------------------------------------------------------------


def _retention(conn: duckdb.DuckDBPyConnection, period: Period, figures_dir: Path) -> Section:
    section = Section("retention", "Retention")
    section.notes.append(
        f"Exact-period retention (retention, mode 'exact') of every cohort that started by "
        f"{period.end.isoformat()}, counting only periods begun by then: retained users / cohort "
        "users, summed over cohorts."
    )
    for granularity in ("day", "week"):
        rows = conn.execute(
            "select period, count(*), sum(cohort_users), sum(retained_users) from retention "
            "where granularity = $granularity and mode = 'exact' and period <= $max_period "
            "and cohort_start + to_days(cast($days * period as integer)) <= $as_of "
            "group by period order by period",
            {
                "granularity": granularity,
                "max_period": RETENTION_PERIODS[granularity],
                "days": RETENTION_PERIOD_DAYS[granularity],
                "as_of": period.end,
            },
        ).fetchall()
        if not rows:
            section.notes.append(f"No {granularity} cohorts yet.")
            continue
        table = Table(columns=[granularity.title(), "Cohorts", "Cohort users", "Retained", "Rate"])
        for number, cohorts, cohort_users, retained in rows:
            rate = retained / cohort_users if cohort_users else None
            table.rows.append(
                [str(number), str(cohorts), str(cohort_users), str(retained), _pct(rate)]
            )
            table.values.append([number, cohorts, cohort_users, retained, rate])
        path = figures_dir / f"retention-{granularity}.png"
        _retention_chart(table, granularity, path)
        section.figures.append(
            ReportFigure(f"{figures_dir.name}/{path.name}", f"Retention by {granularity}", table)
        )
    return section


def _retention_chart(table: Table, granularity: str, path: Path) -> None:
    periods = [row[0] for row in table.values]
    rates = [(row[4] or 0) * 100 for row in table.values]
    fig = Figure(figsize=(7, 2.8), dpi=100)
    ax = fig.subplots()
    ax.plot(periods, rates, marker="o", markersize=3, color=BLUE)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.5, max(periods) + 0.5)  # one period alone would get a fractional axis
    ax.set_xlabel(f"{granularity}s since first event")
    ax.set_ylabel("retained %")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.set_title(f"Retention by {granularity}", fontsize=9)
    _save(fig, path)


def _cohorts(conn: duckdb.DuckDBPyConnection, period: Period, figures_dir: Path) -> Section:
    section = Section("cohorts", "Week cohorts")
    as_of = period.end
    first_cohort = as_of - dt.timedelta(days=as_of.weekday() + 7 * (COHORT_ROWS - 1))
    rows = conn.execute(
        "select cohort_start, cohort_users, period_index, active_users, retention_rate "
        "from cohorts where cohort_granularity = 'week' and dimension = 'all' "
        "and segment = 'all' and cohort_start between $first and $as_of "
        "and cohort_start + to_days(cast(7 * period_index as integer)) <= $as_of "
        "order by cohort_start, period_index",
        {"first": first_cohort, "as_of": as_of},
    ).fetchall()
    if not rows:
        section.notes.append("No week cohorts yet.")
        return section
    section.notes.append(
        "Share of each week's new users active in each later week (cohorts, week granularity, "
        "all segments), for weeks begun by " + as_of.isoformat() + "."
    )
    starts = sorted({row[0] for row in rows})
    width = max(row[2] for row in rows) + 1
    matrix: dict[dt.date, list[float | None]] = {s: [None] * width for s in starts}
    sizes: dict[dt.date, int] = {}
    for start, users, index, _active, rate in rows:
        matrix[start][index] = rate
        sizes[start] = users
    table = Table(columns=["Cohort week", "Users", *(f"W{i}" for i in range(width))])
    for start in starts:
        table.rows.append([start.isoformat(), str(sizes[start]), *map(_pct, matrix[start])])
        table.values.append([start, sizes[start], *matrix[start]])
    path = figures_dir / "cohorts-week.png"
    _heatmap(starts, matrix, width, path)
    section.figures.append(
        ReportFigure(f"{figures_dir.name}/{path.name}", "Week cohort retention", table)
    )
    return section


def _heatmap(
    starts: list[dt.date], matrix: dict[dt.date, list[float | None]], width: int, path: Path
) -> None:
    grid = [[float("nan") if v is None else v * 100 for v in matrix[s]] for s in starts]
    fig = Figure(figsize=(7, 0.9 + 0.32 * len(starts)), dpi=100)
    ax = fig.subplots()
    image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=100)
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            if value == value:  # not NaN
                color = "white" if value > 60 else "black"
                ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(width), [f"W{i}" for i in range(width)], fontsize=7)
    ax.set_yticks(range(len(starts)), [s.isoformat() for s in starts], fontsize=7)
    ax.set_title("Week cohorts: % of users active in week N", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03)
    _save(fig, path)


# --- anomalies ---------------------------------------------------------------------------------


def _anomalies(conn: duckdb.DuckDBPyConnection, period: Period, figures_dir: Path) -> Section:
    section = Section("anomalies", "Anomalies")
    flagged = conn.execute(
        "select metric_date, metric, dimension, segment, value, expected, score, direction, "
        "explanation from anomalies "
        "where is_anomaly and metric_date between $start and $end "
        "order by score desc, metric_date, metric, dimension, segment",
        {"start": period.start, "end": period.end},
    ).fetchall()
    if not flagged:
        section.notes.append(f"No anomalies were flagged {_in_period(period)}.")
        return section
    section.notes.append(f"{len(flagged)} flagged {_in_period(period)}:")
    section.bullets.extend(str(row[8]) for row in flagged)
    table = Table(
        columns=["Day", "Metric", "Dimension", "Segment", "Value", "Expected", "Score", "Direction"]
    )
    for day, metric, dimension, segment, value, expected, score, direction, _ in flagged:
        table.rows.append(
            [
                day.isoformat(),
                metric,
                dimension,
                segment,
                _fmt(metric, value),
                _fmt(metric, expected),
                f"{score:.2f}" if score is not None else "—",
                str(direction or "—"),
            ]
        )
        table.values.append([day, metric, dimension, segment, value, expected, score, direction])
    section.tables.append(table)
    series_keys = list(dict.fromkeys((row[1], row[2], row[3]) for row in flagged))
    names = _unique_names(f"anomaly-{_slug('-'.join(key))}" for key in series_keys)
    for key, name in list(zip(series_keys, names, strict=True))[:MAX_ANOMALY_CHARTS]:
        section.figures.append(_anomaly_figure(conn, key, period, figures_dir / f"{name}.png"))
    if len(series_keys) > MAX_ANOMALY_CHARTS:
        section.notes.append(
            f"{len(series_keys) - MAX_ANOMALY_CHARTS} more flagged series are listed in the table "
            "without a chart."
        )
    return section


def _anomaly_figure(
    conn: duckdb.DuckDBPyConnection, key: tuple[str, str, str], period: Period, path: Path
) -> ReportFigure:
    metric, dimension, segment = key
    series = conn.sql(
        "select metric_date, value, expected, is_anomaly, metric, dimension, segment "
        "from anomalies "
        "where metric = $metric and dimension = $dimension and segment = $segment "
        "and metric_date between $start and $end order by metric_date",
        params={
            "metric": metric,
            "dimension": dimension,
            "segment": segment,
            "start": period.end - dt.timedelta(days=ANOMALY_WINDOW_DAYS - 1),
            "end": period.end,
        },
    ).pl()
    series_chart(series, path)
    table = Table(columns=["Day", "Value", "Expected", "Anomaly"])
    for day, value, expected, is_anomaly, *_ in series.iter_rows():
        table.rows.append(
            [
                day.isoformat(),
                _fmt(metric, value),
                _fmt(metric, expected),
                "yes" if is_anomaly else "",
            ]
        )
        table.values.append([day, value, expected, bool(is_anomaly)])
    title = f"{metric} ({dimension} = {segment})" if dimension != "all" else f"{metric} (all users)"
    return ReportFigure(f"{path.parent.name}/{path.name}", title, table)


# --- formatting and files ----------------------------------------------------------------------


def _fmt(metric: str, value: Any) -> str:
    """Counts as plain integers, revenue with cents, conversion as a percentage."""
    if value is None:
        return "—"
    if metric == "conversion_rate":
        return _pct(value)
    if metric == "revenue":
        return f"{value:.2f}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _delta(value: Any, base: Any) -> float | None:
    return None if value is None or base is None else value - base


def _change(metric: str, value: Any, base: Any) -> str:
    """Absolute and relative change; conversion in percentage points."""
    delta = _delta(value, base)
    if delta is None:
        return "—"
    if metric == "conversion_rate":
        return f"{delta * 100:+.2f} pp"
    absolute = (
        f"{delta:+.2f}" if metric == "revenue" or not float(delta).is_integer() else f"{delta:+.0f}"
    )
    relative = f" ({delta / base:+.1%})" if base else ""
    return absolute + relative


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _unique_names(names: Sequence[str] | Any) -> list[str]:
    """File names made unique (two funnels may slug alike: 'A b' and 'a-b')."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    # No timestamp in the PNG metadata: the same data gives the same bytes.
    fig.savefig(path, format="png", metadata={"Software": None})


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _md_cell(value: Any) -> str:
    """A Markdown table cell: a pipe would end the cell early."""
    return str(value).replace("|", "\\|")


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=lambda name: bool(name and name.endswith(".html.j2")),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


_ENVIRONMENT.filters["md_cell"] = _md_cell


def _render(template: str, context: dict[str, Any]) -> str:
    return _ENVIRONMENT.get_template(template).render(**context)
