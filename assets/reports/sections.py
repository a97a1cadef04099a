"""The report's sections, read from the mart tables: headline, day by day, funnels, retention,
cohorts and anomalies.

Every number shown is read from a mart (`daily_metrics`, `funnel_steps`, `funnel_daily`,
`retention`, `cohorts`, `anomalies`) or is a sum/average of mart rows stated as such, and every
figure's numbers are also printed as a table. A section appears only when its table exists, so a
partly built warehouse still gets a report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from assets.reports.figures import cohort_heatmap, funnel_chart, retention_chart
from pipelines.charts import series_chart
from pipelines.formatting import duration, metric_value, percent, slug
from pipelines.settings import DAILY_METRICS, METRIC_NAMES, Funnel, Settings

if TYPE_CHECKING:  # build.py imports this module; Period is only read here
    from assets.reports.build import Period

MART_TABLES = ("daily_metrics", "funnel_steps", "funnel_daily", "retention", "cohorts", "anomalies")

# Headline metrics (CONTRACT §3 daily_metrics) in display order; the weekly day-by-day table
# adds the event count. Labels are the metric list's (settings.DAILY_METRICS).
HEADLINE_METRICS = (
    "active_users",
    "new_users",
    "sessions",
    "purchasers",
    "revenue",
    "conversion_rate",
)
DAY_BY_DAY_METRICS = (*HEADLINE_METRICS[:4], "events", *HEADLINE_METRICS[4:])
METRIC_LABELS = {metric.name: metric.label for metric in DAILY_METRICS}
# Metrics whose week value is a sum of the days; the others (distinct users, a ratio) cannot be
# summed across days, so the weekly report shows their daily average instead.
ADDITIVE_METRICS = {"new_users", "sessions", "events", "revenue"}

ANOMALY_WINDOW_DAYS = 28  # days of history drawn around a flagged anomaly
MAX_ANOMALY_CHARTS = 10  # the table still lists every flagged row
COHORT_ROWS = 12  # most recent week cohorts in the heatmap
RETENTION_PERIODS = {"day": 30, "week": 12}  # the mart's own period range (CONTRACT §3)
RETENTION_PERIOD_DAYS = {"day": 1, "week": 7}
MISSING = "—"  # a table cell without a value


@dataclass
class Table:
    """A table shown in both documents, its cells already written as text."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


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


def report_sections(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: Period,
    tables: set[str],
    figures_dir: Path,
) -> list[Section]:
    """The sections of a period with data, in report order, their figures in `figures_dir`."""
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


def existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Which mart tables the warehouse has: a section is drawn only from a table that exists."""
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_schema = 'main' and table_name in $names",
        {"names": list(MART_TABLES)},
    ).fetchall()
    return {name for (name,) in rows}


def has_data(conn: duckdb.DuckDBPyConnection, tables: set[str], period: Period) -> bool:
    """Whether any event was recorded in the period (daily_metrics, all users)."""
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
        f"select metric_date, {', '.join(METRIC_NAMES)} from daily_metrics "
        "where dimension = 'all' and segment = 'all' and metric_date between $start and $end "
        "order by metric_date",
        {"start": start, "end": end},
    )
    names = [column[0] for column in result.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in result.fetchall()}


# --- headline and day by day -------------------------------------------------------------------


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
    for metric in HEADLINE_METRICS:
        value = today.get(metric)
        a, b = prev.get(metric), last_week.get(metric)
        table.rows.append(
            [
                METRIC_LABELS[metric],
                metric_value(metric, value, "table", MISSING),
                metric_value(metric, a, "table", MISSING),
                _change(metric, value, a),
                metric_value(metric, b, "table", MISSING),
                _change(metric, value, b),
            ]
        )
    section = Section("headline", "Headline metrics", tables=[table])
    section.notes.append(
        "All users, all platforms and channels (daily_metrics, dimension 'all'); conversion = "
        "purchasers / active users."
    )
    return section


def _weekly_headline(conn: duckdb.DuckDBPyConnection, period: Period) -> Section:
    week = dt.timedelta(days=7)
    previous = dataclasses.replace(
        period, label="", start=period.start - week, end=period.end - week
    )
    this_week = _metrics_by_day(conn, period.start, period.end)
    last_week = _metrics_by_day(conn, previous.start, previous.end)
    table = Table(
        columns=[
            "Metric",
            "Measure",
            f"This week ({period.span})",
            f"Previous week ({previous.span})",
            "Change",
        ]
    )
    for metric in HEADLINE_METRICS:
        measure = "total" if metric in ADDITIVE_METRICS else "daily average"
        value, before = _week_value(this_week, metric), _week_value(last_week, metric)
        table.rows.append(
            [
                METRIC_LABELS[metric],
                measure,
                metric_value(metric, value, "table", MISSING),
                metric_value(metric, before, "table", MISSING),
                _change(metric, value, before),
            ]
        )
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
    table = Table(columns=["Day", *(METRIC_LABELS[m] for m in DAY_BY_DAY_METRICS)])
    for day, row in rows.items():
        table.rows.append(
            [
                f"{day.isoformat()} ({day:%a})",
                *(metric_value(m, row[m], "table", MISSING) for m in DAY_BY_DAY_METRICS),
            ]
        )
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
    names = _unique_names(f"funnel-{slug(f.name)}" for f in funnels)
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
        funnel_chart(funnel.steps, shown, f'Funnel "{funnel.name}": users entering {scope}', path)
        section.figures.append(
            ReportFigure(f"{figures_dir.name}/{path.name}", f'Funnel "{funnel.name}"', table)
        )
    return section


def _in_period(period: Period) -> str:
    return f"on {period.start.isoformat()}" if period.days == 1 else f"during {period.span}"


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
                percent(period_rate, 2, MISSING),
                metric_value("users", past.get("users"), "table", MISSING),
                percent(past.get("conversion_from_first"), 2, MISSING),
                percent(past.get("conversion_from_previous"), 2, MISSING),
                duration(past.get("median_seconds_from_previous"), days=True, missing=MISSING),
            ]
        )
    return table


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
        rates = [retained / users if users else None for _, _, users, retained in rows]
        for (number, cohorts, cohort_users, retained), rate in zip(rows, rates, strict=True):
            table.rows.append(
                [
                    str(number),
                    str(cohorts),
                    str(cohort_users),
                    str(retained),
                    percent(rate, 2, MISSING),
                ]
            )
        path = figures_dir / f"retention-{granularity}.png"
        retention_chart([row[0] for row in rows], rates, granularity, path)
        section.figures.append(
            ReportFigure(f"{figures_dir.name}/{path.name}", f"Retention by {granularity}", table)
        )
    return section


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
        table.rows.append(
            [
                start.isoformat(),
                str(sizes[start]),
                *(percent(rate, 2, MISSING) for rate in matrix[start]),
            ]
        )
    path = figures_dir / "cohorts-week.png"
    cohort_heatmap(starts, matrix, width, path)
    section.figures.append(
        ReportFigure(f"{figures_dir.name}/{path.name}", "Week cohort retention", table)
    )
    return section


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
                metric_value(metric, value, "table", MISSING),
                metric_value(metric, expected, "table", MISSING),
                f"{score:.2f}" if score is not None else MISSING,
                str(direction or MISSING),
            ]
        )
    section.tables.append(table)
    series_keys = list(dict.fromkeys((row[1], row[2], row[3]) for row in flagged))
    names = _unique_names(f"anomaly-{slug('-'.join(key))}" for key in series_keys)
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
                metric_value(metric, value, "table", MISSING),
                metric_value(metric, expected, "table", MISSING),
                "yes" if is_anomaly else "",
            ]
        )
    title = f"{metric} ({dimension} = {segment})" if dimension != "all" else f"{metric} (all users)"
    return ReportFigure(f"{path.parent.name}/{path.name}", title, table)


# --- changes and file names --------------------------------------------------------------------


def _change(metric: str, value: Any, base: Any) -> str:
    """Absolute and relative change; conversion in percentage points."""
    if value is None or base is None:
        return MISSING
    delta = value - base
    if metric == "conversion_rate":
        return f"{delta * 100:+.2f} pp"
    absolute = (
        f"{delta:+.2f}" if metric == "revenue" or not float(delta).is_integer() else f"{delta:+.0f}"
    )
    relative = f" ({delta / base:+.1%})" if base else ""
    return absolute + relative


def _unique_names(names: Iterable[str]) -> list[str]:
    """File names made unique (two funnels may slug alike: 'A b' and 'a-b')."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result
