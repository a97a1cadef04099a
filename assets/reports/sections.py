"""The report's sections, read from the mart tables: headline, day by day, funnels, retention,
cohorts and anomalies.

Every number shown is read from a mart (`daily_metrics`, `funnel_steps`, `funnel_daily`,
`retention`, `cohorts`, `anomalies`) or is a sum/average of mart rows stated as such, and every
figure's numbers are also printed as a table. A section appears only when its table exists, so a
partly built warehouse still gets a report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import duckdb

from assets.reports.figures import cohort_heatmap, funnel_chart, retention_chart
from assets.reports.headline import daily_breakdown, daily_headline, weekly_headline
from assets.reports.layout import MISSING, ReportFigure, Section, Table
from assets.reports.trends import breakdown_section, trend_section
from pipelines.charts import series_chart
from pipelines.formatting import duration, metric_value, percent, slug
from pipelines.settings import Funnel, Settings

if TYPE_CHECKING:  # build.py imports this module; Period is only read here
    from assets.reports.build import Period

RUNNING = "running"  # a table cell of a period that has not ended (CONTRACT §3 is_complete)
MART_TABLES = ("daily_metrics", "funnel_steps", "funnel_daily", "retention", "cohorts", "anomalies")

ANOMALY_WINDOW_DAYS = 28  # days of history drawn around a flagged anomaly
MAX_ANOMALY_CHARTS = 4  # the table still lists every flagged row (a page under ~6,000 px)
COHORT_ROWS = 12  # most recent week cohorts in the heatmap
RETENTION_PERIODS = {"day": 30, "week": 12}  # the mart's own period range (CONTRACT §3)
RETENTION_PERIOD_DAYS = {"day": 1, "week": 7}


def report_sections(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: Period,
    tables: set[str],
    figures_dir: Path,
) -> list[Section]:
    """The sections of a period with data, in report order, their figures in `figures_dir`."""
    currency = settings.currency
    sections = [
        daily_headline(conn, period, currency)
        if period.kind == "daily"
        else weekly_headline(conn, period, currency)
    ]
    if period.kind == "weekly":
        sections.append(daily_breakdown(conn, period, currency))
    sections.append(trend_section(conn, period, currency, figures_dir))
    sections.append(breakdown_section(conn, period, currency, settings.dimensions))
    if {"funnel_steps", "funnel_daily"} & tables:
        sections.append(
            _funnels(conn, settings.funnels, period, tables, figures_dir, settings.timezone)
        )
    if "retention" in tables:
        sections.append(_retention(conn, settings.retention[0].name, period, figures_dir))
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


# --- funnels -----------------------------------------------------------------------------------


def _funnels(
    conn: duckdb.DuckDBPyConnection,
    funnels: Sequence[Funnel],
    period: Period,
    tables: set[str],
    figures_dir: Path,
    timezone: str,
) -> Section:
    section = Section("funnels", "Funnels")
    section.notes.append(
        f"Bars: users whose counted attempt entered the funnel {_in_period(period)} (funnel_daily) "
        "and reached each step, with conversion from the first step. The table adds the whole "
        "history (funnel_steps, all segments). Why the last bar is not the headline's "
        "purchasers: the headline counts everyone with a conversion event that day, while a "
        "funnel counts only users whose counted attempt started that day and passed every "
        "step in order within the window."
    )
    names = _unique_names(f"funnel-{slug(f.name)}" for f in funnels)
    for funnel, name in zip(funnels, names, strict=True):
        period_rows, complete = (
            _funnel_period(conn, funnel, period) if "funnel_daily" in tables else ({}, True)
        )
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
        partial = bool(entered) and not complete
        if partial:
            scope += " (window still open)"
            section.notes.append(
                f'Funnel "{funnel.name}": users who entered {_in_period(period)} have until '
                f"{_window_end(funnel, period, timezone)} to finish (a {duration(funnel.window_seconds, days=True)} "
                "window), so the later steps are still growing: the bars are hatched and the "
                "users and rates of the period are counts so far, not a drop."
            )
        funnel_chart(
            funnel.step_names,
            shown,
            f'Funnel "{funnel.name}": users entering {scope}',
            path,
            complete=not partial,
        )
        section.figures.append(
            ReportFigure(f"{figures_dir.name}/{path.name}", f'Funnel "{funnel.name}"', table)
        )
    return section


def _in_period(period: Period) -> str:
    return f"on {period.start.isoformat()}" if period.days == 1 else f"during {period.span}"


def _funnel_period(
    conn: duckdb.DuckDBPyConnection, funnel: Funnel, period: Period
) -> tuple[dict[int, int], bool]:
    """Users per step of the attempts entered in the period, and whether every one of those
    entry days has had its whole window (CONTRACT §3 funnel_daily.is_complete)."""
    rows = conn.execute(
        "select step_index, sum(users), bool_and(is_complete) from funnel_daily "
        "where funnel = $funnel and entry_date between $start and $end "
        "group by step_index order by step_index",
        {"funnel": funnel.name, "start": period.start, "end": period.end},
    ).fetchall()
    users = {int(step): int(count) for step, count, _ in rows}
    return users, all(done for *_, done in rows)


def _window_end(funnel: Funnel, period: Period, timezone: str) -> str:
    """The last moment an attempt entered in the period may reach a step (end of its last day
    plus the window), on the project zone's clock."""
    zone = ZoneInfo(timezone)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    # Windows are absolute time: added in UTC, shown on the zone's clock (DST included).
    closes = (end.astimezone(dt.UTC) + dt.timedelta(seconds=funnel.window_seconds)).astimezone(zone)
    return f"{closes:%Y-%m-%d %H:%M} {timezone}"


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
    for index, step in enumerate(funnel.step_names, start=1):
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


def _retention(
    conn: duckdb.DuckDBPyConnection, definition: str, period: Period, figures_dir: Path
) -> Section:
    section = Section("retention", "Retention", columns=2)
    section.notes.append(
        f"Exact-period retention (retention, definition '{definition}', mode 'exact') of "
        f"every cohort that started by {period.end.isoformat()}, counting only periods that "
        "had ended by then: retained users / cohort users, summed over cohorts. A period "
        "still running is left out, so the curve's last points are never a partial period "
        "read as a drop."
    )
    for granularity in ("day", "week"):
        # Only periods that have ended by the report's day: a period still running would read as
        # a drop (CONTRACT §3 is_complete).
        rows = conn.execute(
            "select period, count(*), sum(cohort_users), sum(retained_users) from retention "
            "where granularity = $granularity and mode = 'exact' and period <= $max_period "
            "and is_complete "
            "and cohort_start + to_days(cast($days * (period + 1) as integer)) <= $as_of + 1 "
            "and definition = $definition "
            "group by period order by period",
            {
                "granularity": granularity,
                "max_period": RETENTION_PERIODS[granularity],
                "days": RETENTION_PERIOD_DAYS[granularity],
                "as_of": period.end,
                "definition": definition,
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
        "select cohort_start, cohort_users, period_index, active_users, retention_rate, "
        "is_complete and cohort_start + to_days(cast(7 * (period_index + 1) as integer)) "
        "<= $as_of + 1 "
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
        f"all segments). A week still running on {as_of.isoformat()} is hatched in the chart "
        f"and shown as {RUNNING} in the table: its users have not had the whole week yet, so "
        "its share is not a value to compare."
    )
    starts = sorted({row[0] for row in rows})
    width = max(row[2] for row in rows) + 1
    matrix: dict[dt.date, list[float | None]] = {s: [None] * width for s in starts}
    sizes: dict[dt.date, int] = {}
    running: set[tuple[dt.date, int]] = set()
    for start, users, index, _active, rate, complete in rows:
        matrix[start][index] = rate
        sizes[start] = users
        if not complete:
            running.add((start, index))
    table = Table(columns=["Cohort week", "Users", *(f"W{i}" for i in range(width))])
    for start in starts:
        table.rows.append(
            [
                start.isoformat(),
                str(sizes[start]),
                *(
                    RUNNING if (start, index) in running else percent(rate, 2, MISSING)
                    for index, rate in enumerate(matrix[start])
                ),
            ]
        )
    path = figures_dir / "cohorts-week.png"
    cohort_heatmap(starts, matrix, width, path, running)
    section.figures.append(
        ReportFigure(f"{figures_dir.name}/{path.name}", "Week cohort retention", table)
    )
    return section


# --- anomalies ---------------------------------------------------------------------------------


def _anomalies(conn: duckdb.DuckDBPyConnection, period: Period, figures_dir: Path) -> Section:
    """The period's flagged rows, told as incidents (the rows of one day that share a cause,
    `anomaly_incidents`): one bullet per incident, every row in the table with its incident."""
    section = Section("anomalies", "Anomalies", columns=2)
    params = {"start": period.start, "end": period.end}
    flagged = conn.execute(
        "select metric_date, metric, dimension, segment, value, expected, score, direction, "
        "explanation from anomalies "
        "where is_anomaly and metric_date between $start and $end "
        "order by score desc, metric_date, metric, dimension, segment",
        params,
    ).fetchall()
    if not flagged:
        section.notes.append(f"No anomalies were flagged {_in_period(period)}.")
        return section
    incident_of: dict[tuple, str] = {}
    if "anomaly_incidents" in existing_tables(conn):
        incidents = conn.execute(
            "select incident_id, metric_date, metric, dimension, segment, summary, is_lead "
            "from anomaly_incidents where metric_date between $start and $end "
            "order by metric_date, incident_id",
            params,
        ).fetchall()
        incident_of = {tuple(row[1:5]): row[0] for row in incidents}
        summaries = [row[5] for row in incidents if row[6]]
        section.notes.append(
            f"{len(flagged)} flagged rows in {len(summaries)} "
            f"incident{'s' if len(summaries) != 1 else ''} {_in_period(period)}:"
        )
        section.bullets.extend(summaries)
    else:
        section.notes.append(f"{len(flagged)} flagged {_in_period(period)}:")
        section.bullets.extend(str(row[8]) for row in flagged)
    table = Table(
        columns=[
            "Day",
            "Metric",
            "Dimension",
            "Segment",
            "Value",
            "Expected",
            "Score",
            "Direction",
            "Incident",
        ]
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
                incident_of.get((day, metric, dimension, segment), MISSING),
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


# --- file names --------------------------------------------------------------------


def _unique_names(names: Iterable[str]) -> list[str]:
    """File names made unique (two funnels may slug alike: 'A b' and 'a-b')."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result
