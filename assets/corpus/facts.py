"""Structured answers: numbers read from the marts with plain SQL, each cited by its table rows.

A question parsed by `questions.parse_question` is answered here when it is about a metric, a
segment, a period, a funnel or retention. The answer states the value, the period and the
segment in words, and cites the rows it read (`daily_metrics[metric_date=2026-03-20,
dimension=platform, segment=ios]`) and that day's or week's report when one exists. What the data
cannot answer (a segment it does not have, a date outside it) is said in one sentence.

Definitions over several days, as the README's analyst queries use them: counts and revenue are
the sum of the days' rows (a user active on three days counts three times; the daily average is
given beside it), and a period's conversion rate is its purchasers over its active users.
Funnels and retention are answered by `funnel_facts.py` and `retention_facts.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from assets.corpus.periods import Period
from assets.corpus.questions import METRIC_LABELS, Catalog, Question

RATE_METRICS = ("conversion_rate",)


@dataclass(frozen=True)
class Citation:
    n: int
    ref: str  # the rows or the document: daily_metrics[...], report:daily:2026-03-20
    kind: str  # table | report | doc
    title: str
    date: dt.date | None = None


@dataclass
class Draft:
    """Sentences of an answer and the numbered citations they use."""

    home: Path
    sentences: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def cite(self, ref: str, kind: str, title: str, date: dt.date | None = None) -> str:
        """The marker "[n]" for `ref`, numbering it the first time."""
        for citation in self.citations:
            if citation.ref == ref:
                return f"[{citation.n}]"
        self.citations.append(Citation(len(self.citations) + 1, ref, kind, title, date))
        return f"[{len(self.citations)}]"

    def say(self, sentence: str) -> None:
        self.sentences.append(sentence)

    def cite_report(self, period: Period) -> str:
        """The day's (or week's) report, as its path and marker, when it was written; else
        nothing."""
        reports = self.home / "reports"
        if period.grain == "day":
            path = reports / "daily" / f"{period.start.isoformat()}.md"
            ref = f"report:daily:{period.start.isoformat()}"
        elif period.grain == "week":
            year, week, _ = period.start.isocalendar()
            path = reports / "weekly" / f"{year}-W{week:02d}.md"
            ref = f"report:weekly:{year}-W{week:02d}"
        else:
            return ""
        if not path.is_file():
            return ""
        relative = f"reports/{path.relative_to(reports).as_posix()}"
        return f"{relative} {self.cite(ref, 'report', relative, period.start)}"

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


# --- the catalog ----------------------------------------------------------------------------


def load_catalog(conn: duckdb.DuckDBPyConnection) -> Catalog | None:
    """What the marts hold, or None before the first run built `daily_metrics`."""
    if not _has_table(conn, "daily_metrics"):
        return None
    first, last = conn.execute(
        "select min(metric_date), max(metric_date) from daily_metrics where dimension = 'all'"
    ).fetchone()
    if first is None:
        return None
    segments: dict[str, list[str]] = {}
    for dimension, segment in conn.execute(
        "select distinct dimension, segment from daily_metrics where dimension <> 'all' "
        "order by 1, 2"
    ).fetchall():
        segments.setdefault(dimension, []).append(segment)
    funnels: dict[str, list[str]] = {}
    if _has_table(conn, "funnel_steps"):
        for funnel, step in conn.execute(
            "select funnel, step from (select distinct funnel, step_index, step from "
            "funnel_steps) order by funnel, step_index"
        ).fetchall():
            funnels.setdefault(funnel, []).append(step)
    return Catalog(
        first,
        last,
        {d: tuple(v) for d, v in segments.items()},
        {f: tuple(s) for f, s in funnels.items()},
    )


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables where table_name = $name",
            {"name": name},
        ).fetchone()[0]
    )


def columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_name = $t", {"t": table}
    ).fetchall()
    return {row[0] for row in rows}


# --- shared sentences -----------------------------------------------------------------------


def fmt(metric: str, value: float | None) -> str:
    """A value as an answer writes it: 3.45% for a rate, 12,345.67 for revenue, 1,234 counts."""
    if value is None:
        return "n/a"
    if metric in RATE_METRICS or metric.endswith("_rate"):
        return f"{value * 100:.2f}%"
    if metric == "revenue":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def upper_first(text: str) -> str:
    """A sentence's first letter in capitals, the rest as written ("In March 2026")."""
    return text[:1].upper() + text[1:]


def change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "no comparison"
    if before == 0:
        return "up from 0" if now > 0 else "unchanged at 0"
    relative = now / before - 1
    word = "up" if relative > 0 else "down" if relative < 0 else "unchanged"
    return f"{word} {abs(relative) * 100:.1f}%" if word != "unchanged" else word


def segment_words(segment: tuple[str, str] | None) -> str:
    return "" if segment is None else f" for {segment[0]} {segment[1]}"


def rows_ref(table: str, period: Period, dimension: str, segment: str, date_column: str) -> str:
    days = (
        period.start.isoformat()
        if period.start == period.end
        else f"{period.start.isoformat()}..{period.end.isoformat()}"
    )
    return f"{table}[{date_column}={days}, dimension={dimension}, segment={segment}]"


def outside_data(question: Question, catalog: Catalog) -> str | None:
    """One sentence when the period lies wholly outside the data, else None."""
    period = question.period
    if period and (period.end < catalog.first_day or period.start > catalog.last_day):
        return (
            f"There is no data {period.when}: the warehouse holds "
            f"{catalog.first_day.isoformat()} to {catalog.last_day.isoformat()}."
        )
    return None


def clipped(period: Period, catalog: Catalog) -> Period:
    """The period cut to the days with data. A cut period is compared with as many days just
    before it (a month three days old against the three days before, not a whole month)."""
    start, end = max(period.start, catalog.first_day), min(period.end, catalog.last_day)
    if (start, end) == (period.start, period.end):
        return period
    span = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    return Period(start, end, span, "range", said=f"{period.when} (days with data: {span})")


def missing_segment_sentence(question: Question, catalog: Catalog) -> str:
    known = "; ".join(f"{d}: {', '.join(v)}" for d, v in catalog.segments.items())
    return (
        f"There is no segment '{question.missing_segment}' in the data, so this cannot be "
        f"answered for it; the segments are {known}."
    )


# --- daily metrics --------------------------------------------------------------------------


def metric_total(
    conn: duckdb.DuckDBPyConnection, metric: str, period: Period, dimension: str, segment: str
) -> tuple[float | None, int]:
    """The metric over the period for one segment, and how many day rows it read."""
    row = conn.execute(
        "select sum(active_users), sum(new_users), sum(sessions), sum(events), "
        "sum(purchasers), sum(revenue), count(*) from daily_metrics "
        "where metric_date between $start and $end and dimension = $dimension "
        "and segment = $segment",
        {"start": period.start, "end": period.end, "dimension": dimension, "segment": segment},
    ).fetchone()
    totals = dict(
        zip(
            ("active_users", "new_users", "sessions", "events", "purchasers", "revenue"),
            row[:6],
            strict=True,
        )
    )
    rows = int(row[6])
    if metric == "conversion_rate":
        active, purchasers = totals["active_users"], totals["purchasers"]
        value = purchasers / active if active else (0.0 if rows else None)
        return value, rows
    value = totals[metric]
    return (float(value) if value is not None else (0.0 if rows == 0 else None)), rows


def answer_value(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    catalog_period = question.period
    assert catalog_period is not None and question.metric is not None
    metric = question.metric
    dimension, segment = question.segment or ("all", "all")
    period = catalog_period
    value, rows = metric_total(conn, metric, period, dimension, segment)
    ref = draft.cite(
        rows_ref("daily_metrics", period, dimension, segment, "metric_date"),
        "table",
        f"daily_metrics, {METRIC_LABELS[metric]}{segment_words(question.segment)}",
        period.start,
    )
    label = METRIC_LABELS[metric]
    where = segment_words(question.segment)
    if rows == 0:
        draft.say(
            f"There were no {segment} events {period.when}, so {label}{where} "
            f"was {fmt(metric, 0.0)} {ref}."
        )
        return
    verb = "was" if period.days == 1 else "was, over those days,"
    sentence = f"{upper_first(label)}{where} {period.when} {verb} {fmt(metric, value)}"
    if period.days > 1 and metric in ("active_users", "purchasers"):
        sentence += (
            f" (the sum of the {rows} daily counts; {fmt(metric, (value or 0) / rows)} a day on "
            "average)"
        )
    previous = period.previous()
    before, before_rows = metric_total(conn, metric, previous, dimension, segment)
    first_day = conn.execute("select min(metric_date) from daily_metrics").fetchone()[0]
    if before_rows and previous.start >= first_day:  # never against a period half without data
        before_ref = draft.cite(
            rows_ref("daily_metrics", previous, dimension, segment, "metric_date"),
            "table",
            f"daily_metrics, {label}{where}",
            previous.start,
        )
        sentence += (
            f" {ref}, {change(value, before)} from {fmt(metric, before)} {previous.when} "
            f"{before_ref}."
        )
    else:
        sentence += f" {ref}."
    draft.say(sentence + _week_before(conn, question, draft, period, value))
    report = draft.cite_report(period)
    if report:
        draft.say(f"That {'day' if period.grain == 'day' else 'week'}'s report is {report}.")


def _week_before(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    draft: Draft,
    period: Period,
    value: float | None,
) -> str:
    """For a day: the change from the same weekday a week before, as the daily report shows."""
    if period.grain != "day" or question.metric is None:
        return ""
    metric = question.metric
    dimension, segment = question.segment or ("all", "all")
    day = period.start - dt.timedelta(days=7)
    before, rows = metric_total(
        conn, metric, Period(day, day, day.isoformat(), "day"), dimension, segment
    )
    if not rows:
        return ""
    ref = draft.cite(
        f"daily_metrics[metric_date={day.isoformat()}, dimension={dimension}, segment={segment}]",
        "table",
        f"daily_metrics, {METRIC_LABELS[metric]}{segment_words(question.segment)}",
        day,
    )
    return (
        f" Against the same weekday a week before ({day.isoformat()}, {fmt(metric, before)}): "
        f"{change(value, before)} {ref}."
    )


def answer_by_segment(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    """Every segment of one dimension over the period, best first; a ranking leads with the
    winner (or the last when the question asks for the least)."""
    assert question.period is not None and question.metric and question.dimension
    metric, dimension, period = question.metric, question.dimension, question.period
    segments = [
        row[0]
        for row in conn.execute(
            "select distinct segment from daily_metrics where dimension = $d and "
            "metric_date between $start and $end order by 1",
            {"d": dimension, "start": period.start, "end": period.end},
        ).fetchall()
    ]
    values = []
    for segment in segments:
        value, _ = metric_total(conn, metric, period, dimension, segment)
        values.append((value if value is not None else 0.0, segment))
    values.sort(key=lambda item: (-item[0], item[1]))
    ref = draft.cite(
        rows_ref("daily_metrics", period, dimension, "*", "metric_date"),
        "table",
        f"daily_metrics, {METRIC_LABELS[metric]} by {dimension}",
        period.start,
    )
    label = METRIC_LABELS[metric]
    listing = ", ".join(f"{segment} {fmt(metric, value)}" for value, segment in values)
    if question.intent == "rank" and values:
        ranked = [item for item in values if item[1] not in ("unknown", "other")] or values
        value, segment = ranked[-1] if question.lowest else ranked[0]
        word = "lowest" if question.lowest else "highest"
        draft.say(
            f"{upper_first(period.when)}, {dimension} {segment} had the {word} {label}: "
            f"{fmt(metric, value)} {ref}. All {dimension}s: {listing}."
        )
    else:
        draft.say(f"{upper_first(label)} by {dimension} {period.when}: {listing} {ref}.")
    report = draft.cite_report(period)
    if report:
        draft.say(f"That {'day' if period.grain == 'day' else 'week'}'s report is {report}.")


def answer_best_day(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    """The day of the period with the highest (or lowest) value of the metric."""
    assert question.period is not None and question.metric is not None
    metric, period = question.metric, question.period
    dimension, segment = question.segment or ("all", "all")
    order = "asc" if question.lowest else "desc"
    row = conn.execute(
        f"select metric_date, {metric} from daily_metrics where dimension = $d and segment = $s "
        f"and metric_date between $start and $end order by {metric} {order}, metric_date limit 1",
        {"d": dimension, "s": segment, "start": period.start, "end": period.end},
    ).fetchone()
    label = METRIC_LABELS[metric]
    where = segment_words(question.segment)
    if row is None:
        draft.say(f"There are no rows of {label}{where} {period.when}.")
        return
    day, value = row
    ref = draft.cite(
        rows_ref("daily_metrics", period, dimension, segment, "metric_date"),
        "table",
        f"daily_metrics, {label}{where}",
        period.start,
    )
    word = "lowest" if question.lowest else "highest"
    draft.say(
        f"{upper_first(period.when)}, the {word} {label}{where} was on {day.isoformat()}: "
        f"{fmt(metric, value)} {ref}."
    )
