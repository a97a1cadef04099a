"""The warehouse documents (CONTRACT §4): flagged anomalies, weekly and whole-history funnels
and acquisition cohorts, each written as short English prose a question can match.

The numbers are spelled out the way a person would ask about them ("12.3%", "1,234 users",
"Thursday 12 March 2026") and every document names its metric, segment and period, so a
chunk read alone still says what it is about. The caller supplies the warehouse connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import duckdb

from assets.corpus.documents import Document
from pipelines.errors import EventpulseError
from pipelines.formatting import duration, metric_value, percent

# Opens the warehouse for reading (raising EventpulseError when there is none yet).
WarehouseOpener = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def warehouse_documents_if_any(
    open_warehouse: WarehouseOpener, problems: list[str] | None = None
) -> list[Document]:
    """Warehouse documents, or none when there is no warehouse yet (opening it says so)."""
    try:
        with open_warehouse() as conn:
            return warehouse_documents(conn, problems)
    except EventpulseError:
        return []


def warehouse_documents(
    conn: duckdb.DuckDBPyConnection, problems: list[str] | None = None
) -> list[Document]:
    """Anomaly, funnel and cohort documents from whichever of their tables exist.

    A table that cannot be read as the contract describes is reported and skipped: the other
    sources still make a useful corpus."""
    tables = _tables(conn)
    sources = [
        ("anomalies", lambda: anomaly_documents(conn, "daily_metrics" in tables)),
        ("funnel_daily", lambda: funnel_week_documents(conn)),
        ("funnel_steps", lambda: funnel_overall_documents(conn)),
        ("cohorts", lambda: cohort_documents(conn)),
    ]
    documents: list[Document] = []
    for table, read in sources:
        if table not in tables:
            continue
        try:
            documents += read()
        except duckdb.Error as exc:
            message = " ".join(str(exc).split())[:200]
            if problems is not None:
                problems.append(f"warehouse table {table}: unreadable ({message}); skipped.")
    return documents


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = 'main'"
    ).fetchall()
    return {row[0] for row in rows}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params) if params else conn.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


METRIC_PHRASES = {
    "active_users": "active users (daily active users, DAU)",
    "new_users": "new users (first-time users, acquisition)",
    "sessions": "sessions (visits)",
    "events": "events (tracked event volume)",
    "purchasers": "purchasers (users who made a purchase, purchases)",
    "revenue": "revenue (sales)",
    "conversion_rate": "conversion rate (purchasers / active users)",
}
NEIGHBOUR_DAYS = 3

# daily_metrics is wide (one column per metric); anomalies name the metric as data. Unpivot
# once so the neighbouring days of every flagged anomaly come from one query.
_NEIGHBOURS_SQL = """
with long as (
    unpivot (select metric_date, dimension, segment, active_users, new_users, sessions, events,
                    purchasers, revenue, conversion_rate from daily_metrics)
    on active_users, new_users, sessions, events, purchasers, revenue, conversion_rate
    into name metric value value
)
select a.metric_date as anomaly_date, a.metric, a.dimension, a.segment,
       l.metric_date, l.value
from anomalies a
join long l
  on l.metric = a.metric and l.dimension = a.dimension and l.segment = a.segment
 and l.metric_date between a.metric_date - $days and a.metric_date + $days
where a.is_anomaly
order by l.metric_date
"""


def anomaly_documents(
    conn: duckdb.DuckDBPyConnection, with_neighbours: bool = True
) -> list[Document]:
    """One document per incident (per flagged anomaly without `anomaly_incidents`): its
    summary, the lead row's explanation, numbers and neighbouring days, the other rows' sentences."""
    anomalies = _rows(
        conn,
        "select metric_date, metric, dimension, segment, value, expected, score, direction, "
        "explanation from anomalies where is_anomaly "
        "order by metric_date, metric, dimension, segment",
    )
    neighbours: dict[tuple, list[tuple[dt.date, float]]] = defaultdict(list)
    if with_neighbours and anomalies:
        for row in _rows(conn, _NEIGHBOURS_SQL, {"days": NEIGHBOUR_DAYS}):
            key = (row["anomaly_date"], row["metric"], row["dimension"], row["segment"])
            neighbours[key].append((row["metric_date"], row["value"]))

    def key(row: dict[str, Any]) -> tuple:
        return (row["metric_date"], row["metric"], row["dimension"], row["segment"])

    incidents = _incidents(conn)
    if not incidents:
        return [_anomaly_document(row, neighbours.get(key(row), [])) for row in anomalies]
    # One document per incident (the flagged rows of a day that share a cause), named after
    # its lead row: a question about that day finds the whole story in one place.
    by_key = {key(row): row for row in anomalies}
    documents = []
    for rows in incidents.values():
        members = [by_key[k] for k, _ in rows if k in by_key]
        if not members:
            continue
        lead = members[0]
        document = _anomaly_document(lead, neighbours.get(key(lead), []))
        others = [(row["explanation"] or "").strip() for row in members[1:]]
        summary = rows[0][1]
        body = "\n".join([summary, document.body, *others])
        title = document.title + (f" and {len(others)} more rows" if others else "")
        documents.append(dataclasses.replace(document, title=title, body=body))
    return documents


def _incidents(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[tuple, str]]]:
    """incident_id -> its rows' keys with the incident's summary, lead row first; empty
    without an `anomaly_incidents` table."""
    found = conn.sql(
        "select count(*) from duckdb_tables() where table_name = 'anomaly_incidents'"
    ).fetchall()
    if not found[0][0]:
        return {}
    incidents: dict[str, list[tuple[tuple, str]]] = defaultdict(list)
    for row in _rows(
        conn,
        "select incident_id, metric_date, metric, dimension, segment, summary "
        "from anomaly_incidents order by metric_date, incident_id, not is_lead, metric, "
        "dimension, segment",
    ):
        key = (row["metric_date"], row["metric"], row["dimension"], row["segment"])
        incidents[row["incident_id"]].append((key, row["summary"]))
    return incidents


def _anomaly_document(row: dict[str, Any], days: list[tuple[dt.date, float]]) -> Document:
    day: dt.date = row["metric_date"]
    metric, dimension, segment = row["metric"], row["dimension"], row["segment"]
    where = "all users" if dimension == "all" else f"{dimension} {segment}"
    direction = row["direction"] or ("spike" if _gt(row["value"], row["expected"]) else "dip")
    moved = "rose above" if direction == "spike" else "dropped below"
    value, expected = row["value"], row["expected"]
    sentences = [
        (row["explanation"] or "").strip(),
        f"On {_long_date(day)} ({day.isoformat()}), {METRIC_PHRASES.get(metric, metric)} "
        f"for {where} was {metric_value(metric, value, 'prose', 'unknown')} against an "
        f"expected {metric_value(metric, expected, 'prose', 'unknown')}: it {moved} the "
        f"expected value ({_relative_change(value, expected)}), a {direction}.",
        f"Metric {metric}, dimension {dimension}, segment {segment}, "
        f"anomaly score {_fixed(row['score'], 2)} (0 to 1, higher is more anomalous).",
    ]
    if days:
        values = ", ".join(
            f"{d.isoformat()} {metric_value(metric, v, 'prose', 'unknown')}" for d, v in days
        )
        sentences.append(f"{metric} for {where} on the neighbouring days: {values}.")
    return Document(
        doc_id=f"anomaly:{day.isoformat()}:{metric}:{dimension}:{segment}",
        kind="anomaly",
        title=f"Anomaly {day.isoformat()}: {metric} {direction} for {where}",
        source="warehouse: anomalies, daily_metrics",
        date=day,
        body="\n".join(s for s in sentences if s),
    )


def funnel_week_documents(conn: duckdb.DuckDBPyConnection) -> list[Document]:
    """One document per funnel and ISO week of entry: step counts and conversions."""
    rows = _rows(
        conn,
        "select funnel, date_trunc('week', entry_date)::date as week_start, step_index, "
        "any_value(step) as step, sum(users)::bigint as users, "
        "max(max(entry_date)) over () as last_entry "
        # Entry days whose window is still open are left out: their later steps are still
        # growing, and a summary would read them as a drop (CONTRACT §3 is_complete).
        "from funnel_daily where is_complete "
        "group by all order by funnel, week_start, step_index",
    )
    weeks: dict[tuple[str, dt.date], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        weeks[(row["funnel"], row["week_start"])].append(row)
    documents = []
    previous: dict[str, float | None] = {}
    for (funnel, monday), steps in weeks.items():
        overall = _share(steps[-1]["users"], steps[0]["users"])
        documents.append(_funnel_week_document(funnel, monday, steps, previous.get(funnel)))
        previous[funnel] = overall
    return documents


def _funnel_week_document(
    funnel: str, monday: dt.date, steps: list[dict[str, Any]], previous_overall: float | None
) -> Document:
    year, week, _ = monday.isocalendar()
    label = f"{year}-W{week:02d}"
    sunday = monday + dt.timedelta(days=6)
    last_entry: dt.date = steps[0]["last_entry"]
    entered = steps[0]["users"]
    sentences = [
        f"Funnel {funnel}, week {label} (Monday {monday.isoformat()} to Sunday "
        f"{sunday.isoformat()}): {entered:,} users entered at step 1 ({steps[0]['step']})."
    ]
    for before, step in zip(steps, steps[1:], strict=False):
        sentences.append(
            f"Step {step['step_index']} ({step['step']}): {step['users']:,} users, "
            f"{percent(_share(step['users'], entered))} of entrants and "
            f"{percent(_share(step['users'], before['users']))} of the previous step."
        )
    overall = _share(steps[-1]["users"], entered)
    closing = f"Overall conversion of funnel {funnel} in week {label}: {percent(overall)}"
    if previous_overall is not None and overall is not None:
        change = (overall - previous_overall) * 100
        closing += f" (previous week {percent(previous_overall)}, {change:+.1f} points)"
    sentences.append(closing + ".")
    if sunday > last_entry:
        sentences.append(f"Partial week: entries through {last_entry.isoformat()}.")
    return Document(
        doc_id=f"funnel:{funnel}:{label}",
        kind="funnel",
        title=f"Funnel {funnel}, week {label}",
        source="warehouse: funnel_daily",
        date=monday,
        body="\n".join(sentences),
    )


def funnel_overall_documents(conn: duckdb.DuckDBPyConnection) -> list[Document]:
    """One document per funnel over the whole history, with its per-segment conversion."""
    rows = _rows(
        conn,
        "select funnel, dimension, segment, step_index, step, users, conversion_from_first, "
        "conversion_from_previous, median_seconds_from_previous from funnel_steps "
        "order by funnel, dimension, segment, step_index",
    )
    funnels: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(dict)
    for row in rows:
        funnels[row["funnel"]].setdefault((row["dimension"], row["segment"]), []).append(row)
    return [_funnel_overall_document(name, segments) for name, segments in funnels.items()]


def _funnel_overall_document(
    funnel: str, segments: dict[tuple[str, str], list[dict[str, Any]]]
) -> Document:
    sentences = [f"Funnel {funnel} over the whole history (first-touch segments)."]
    for step in segments.get(("all", "all"), []):
        sentence = (
            f"Step {step['step_index']} ({step['step']}): {step['users']:,} users, "
            f"{percent(step['conversion_from_first'])} of step 1, "
            f"{percent(step['conversion_from_previous'])} of the previous step"
        )
        if step["step_index"] > 1 and step["median_seconds_from_previous"] is not None:
            sentence += f", median {duration(step['median_seconds_from_previous'], minute_digits=0)} after it"
        sentences.append(sentence + ".")
    for (dimension, segment), steps in sorted(segments.items()):
        if dimension == "all" or not steps:
            continue
        sentences.append(
            f"{dimension} {segment}: {steps[0]['users']:,} entered, "
            f"{percent(steps[-1]['conversion_from_first'])} reached {steps[-1]['step']}."
        )
    return Document(
        doc_id=f"funnel:{funnel}:overall",
        kind="funnel",
        title=f"Funnel {funnel}, whole history",
        source="warehouse: funnel_steps",
        date=None,
        body="\n".join(sentences),
    )


TREND_PERIODS = {"week": (1, 4), "month": (1, 3)}


def cohort_documents(conn: duckdb.DuckDBPyConnection) -> list[Document]:
    """One document per acquisition cohort, and one retention trend per segment."""
    rows = _rows(
        conn,
        "select cohort_granularity, cohort_start, dimension, segment, cohort_users, "
        "period_index, active_users, retention_rate, cumulative_revenue, ltv from cohorts "
        "where is_complete "  # a period still running is not summarised as a value
        "order by cohort_granularity, cohort_start, dimension, segment, period_index",
    )
    series: dict[tuple[str, dt.date, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (row["cohort_granularity"], row["cohort_start"], row["dimension"], row["segment"])
        series[key].append(row)
    cohorts: dict[tuple[str, dt.date], dict[tuple[str, str], list]] = defaultdict(dict)
    trends: dict[tuple[str, str, str], list[list[dict[str, Any]]]] = defaultdict(list)
    for (granularity, start, dimension, segment), periods in series.items():
        cohorts[(granularity, start)][(dimension, segment)] = periods
        trends[(granularity, dimension, segment)].append(periods)
    documents = [_cohort_document(g, start, segs) for (g, start), segs in cohorts.items()]
    documents += [_cohort_trend_document(*key, lines) for key, lines in trends.items()]
    return documents


def _cohort_label(granularity: str, start: dt.date) -> str:
    if granularity == "week":
        year, week, _ = start.isocalendar()
        return f"weekly cohort {start.isoformat()} ({year}-W{week:02d})"
    return f"monthly cohort {start.strftime('%Y-%m')} ({start.strftime('%B %Y')})"


def _cohort_document(
    granularity: str, start: dt.date, segments: dict[tuple[str, str], list[dict[str, Any]]]
) -> Document:
    label = _cohort_label(granularity, start)
    periods = segments.get(("all", "all")) or next(iter(segments.values()))
    sentences = [
        f"The {label} (users acquired in that {granularity}) has {periods[0]['cohort_users']:,} "
        f"users. Retention by {granularity} since acquisition: "
        + ", ".join(
            f"{granularity} {p['period_index']} {percent(p['retention_rate'])} "
            f"({p['active_users']:,} users)"
            for p in periods
            if p["period_index"] > 0
        )
        + "."
    ]
    last = periods[-1]
    sentences.append(
        f"By {granularity} {last['period_index']} the cohort's LTV (cumulative revenue per user) "
        f"is {_fixed(last['ltv'], 2)}, cumulative revenue {_fixed(last['cumulative_revenue'], 2)}."
    )
    for (dimension, segment), lines in sorted(segments.items()):
        if dimension == "all":
            continue
        first_period = next((p for p in lines if p["period_index"] == 1), None)
        retained = percent(first_period["retention_rate"]) if first_period else "not yet known"
        sentences.append(
            f"{dimension} {segment}: {lines[0]['cohort_users']:,} users, {granularity}-1 "
            f"retention {retained}, LTV {_fixed(lines[-1]['ltv'], 2)} by {granularity} "
            f"{lines[-1]['period_index']}."
        )
    return Document(
        doc_id=f"cohort:{granularity}:{start.isoformat()}",
        kind="cohort",
        title=label[0].upper() + label[1:],
        source="warehouse: cohorts",
        date=start,
        body="\n".join(sentences),
    )


def _cohort_trend_document(
    granularity: str, dimension: str, segment: str, cohorts: list[list[dict[str, Any]]]
) -> Document:
    who = "all users" if dimension == "all" else f"{dimension} {segment}"
    sentences = []
    for period in TREND_PERIODS.get(granularity, (1,)):
        points = [
            (lines[0]["cohort_start"], p["retention_rate"], lines[0]["cohort_users"])
            for lines in cohorts
            for p in lines
            if p["period_index"] == period
        ]
        if not points:
            continue
        listed = ", ".join(f"{s.isoformat()} {percent(r)} of {n:,}" for s, r, n in points)
        sentence = (
            f"{granularity.capitalize()}-{period} retention of {granularity}ly cohorts of {who} "
            f"(acquisition {dimension} {segment}) by cohort start: {listed}."
        )
        (first, first_rate, _), (last, last_rate, _) = points[0], points[-1]
        if len(points) > 1 and first_rate is not None and last_rate is not None:
            change = (last_rate - first_rate) * 100
            sentence += (
                f" It went from {percent(first_rate)} ({first.isoformat()}) to "
                f"{percent(last_rate)} ({last.isoformat()}), {change:+.1f} points."
            )
        sentences.append(sentence)
    return Document(
        doc_id=f"cohort:{granularity}:{dimension}:{segment}",
        kind="cohort",
        title=f"Retention trend of {granularity}ly cohorts, {who}",
        source="warehouse: cohorts",
        date=None,
        body="\n".join(sentences) or f"No {granularity}ly cohort of {who} has retention data yet.",
    )


# --- small prose helpers without a shared counterpart -------------------------------------------


def _gt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a > b


def _fixed(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _share(part: float | None, whole: float | None) -> float | None:
    return None if not whole or part is None else part / whole


def _relative_change(value: float | None, expected: float | None) -> str:
    if value is None or not expected:
        return "change unknown"
    return f"{(value - expected) / abs(expected) * 100:+.1f}% versus expected"


def _long_date(day: dt.date) -> str:
    return f"{day.strftime('%A')} {day.day} {day.strftime('%B %Y')}"
