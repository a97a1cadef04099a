"""The headline of a report and the weekly report's day-by-day table, from `daily_metrics`.

The daily headline compares each metric with the previous day and the same weekday a week
before; the weekly one shows the week's totals (or daily averages, for metrics that cannot be
summed across days) against the previous week.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb

from assets.reports.layout import MISSING, Section, Table
from pipelines.formatting import metric_value, money
from pipelines.settings import DAILY_METRICS, METRIC_NAMES

if TYPE_CHECKING:  # build.py imports this module; Period is only read here
    from assets.reports.build import Period

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


def daily_headline(
    conn: duckdb.DuckDBPyConnection, period: Period, currency: str = "USD"
) -> Section:
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
                value_text(metric, value, currency),
                value_text(metric, a, currency),
                _change(metric, value, a, currency),
                value_text(metric, b, currency),
                _change(metric, value, b, currency),
            ]
        )
    section = Section("headline", "Headline metrics", tables=[table])
    section.notes.append(
        "All users, all platforms and channels (daily_metrics, dimension 'all'); conversion = "
        "purchasers / active users."
    )
    return section


def weekly_headline(
    conn: duckdb.DuckDBPyConnection, period: Period, currency: str = "USD"
) -> Section:
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
                value_text(metric, value, currency),
                value_text(metric, before, currency),
                _change(metric, value, before, currency),
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


def daily_breakdown(
    conn: duckdb.DuckDBPyConnection, period: Period, currency: str = "USD"
) -> Section:
    rows = _metrics_by_day(conn, period.start, period.end)
    table = Table(columns=["Day", *(METRIC_LABELS[m] for m in DAY_BY_DAY_METRICS)])
    for day, row in rows.items():
        table.rows.append(
            [
                f"{day.isoformat()} ({day:%a})",
                *(value_text(m, row[m], currency) for m in DAY_BY_DAY_METRICS),
            ]
        )
    return Section("days", "Day by day", tables=[table])


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


def value_text(metric: str, value: float | None, currency: str) -> str:
    """A metric's value in a report table: revenue as money ("$12,345.67"), the rest plain."""
    if metric == "revenue":
        return money(value, currency, MISSING)
    return metric_value(metric, value, "table", MISSING)


def _change(metric: str, value: Any, base: Any, currency: str = "USD") -> str:
    """Absolute and relative change; conversion in percentage points."""
    if value is None or base is None:
        return MISSING
    delta = value - base
    if metric == "conversion_rate":
        return f"{delta * 100:+.2f} pp"
    if metric == "revenue":
        absolute = ("+" if delta >= 0 else "") + money(delta, currency, MISSING)
    else:
        absolute = f"{delta:+.2f}" if not float(delta).is_integer() else f"{delta:+.0f}"
    relative = f" ({delta / base:+.1%})" if base else ""
    return absolute + relative
