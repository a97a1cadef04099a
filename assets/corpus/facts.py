"""Structured answers: numbers read from the marts with plain SQL, each cited by its table rows.

A question parsed by `questions.parse_question` is answered here when it is about a metric, a
segment, a period, a funnel or retention. The answer states the value, the period and the
segment in words, and cites the rows it read (`daily_metrics[metric_date=2026-03-20,
dimension=platform, segment=ios]`) and that day's or week's report when one exists. What the data
cannot answer (a segment it does not have, a date outside it) is said in one sentence.

Definitions over several days, as the README's analyst queries use them: counts and revenue are
the sum of the days' rows (a user active on three days counts three times; the daily average is
given beside it), and a period's conversion rate is its purchasers over its active users. Week-N
retention over several cohorts is their retained users over their cohort users, complete periods
only (CONTRACT §3 `is_complete`), so a period still running never reads as a drop.
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
        """The day's (or week's) report when it was written, else nothing."""
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
        return self.cite(
            ref, "report", f"reports/{path.relative_to(reports).as_posix()}", period.start
        )

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


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
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
    sentence = f"{label.capitalize()}{where} {period.when} {verb} {fmt(metric, value)}"
    if period.days > 1 and metric in ("active_users", "purchasers"):
        sentence += (
            f" (the sum of the {rows} daily counts; {fmt(metric, (value or 0) / rows)} a day on "
            "average)"
        )
    previous = period.previous()
    before, before_rows = metric_total(conn, metric, previous, dimension, segment)
    if before_rows:
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
    draft.say(sentence)
    report = draft.cite_report(period)
    if report:
        draft.say(f"That {'day' if period.grain == 'day' else 'week'}'s report: {report}.")


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
            f"{period.when.capitalize()}, {dimension} {segment} had the {word} {label}: "
            f"{fmt(metric, value)} {ref}. All {dimension}s: {listing}."
        )
    else:
        draft.say(f"{label.capitalize()} by {dimension} {period.when}: {listing} {ref}.")
    report = draft.cite_report(period)
    if report:
        draft.say(f"That {'day' if period.grain == 'day' else 'week'}'s report: {report}.")


# --- funnels --------------------------------------------------------------------------------


def answer_funnel(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    """Conversion between two named steps (or from the first to the last), over the whole
    history from funnel_steps, or by entry day from funnel_daily when a period is named."""
    funnel = question.funnel
    assert funnel is not None
    dimension, segment = question.segment or ("all", "all")
    steps = conn.execute(
        "select step_index, step, users from funnel_steps where funnel = $f and dimension = $d "
        "and segment = $s order by step_index",
        {"f": funnel, "d": dimension, "s": segment},
    ).fetchall()
    if not steps:
        draft.say(f"The {funnel} funnel has no rows{segment_words(question.segment)}.")
        return
    first, last = _step_pair(question.steps, len(steps))
    names = {index: name for index, name, _ in steps}
    if question.period is not None and question.segment is None:
        _funnel_period(conn, question, draft, first, last, names)
        return
    users = {index: count for index, _, count in steps}
    ref = draft.cite(
        f"funnel_steps[funnel={funnel}, dimension={dimension}, segment={segment}, "
        f"step_index={first}..{last}]",
        "table",
        f"funnel_steps, {funnel}{segment_words(question.segment)}",
    )
    rate = users[last] / users[first] if users[first] else None
    where = segment_words(question.segment)
    note = (
        " (funnel_steps covers the whole history; it has no dates by segment)"
        if (question.period is not None)
        else " over the whole history"
    )
    draft.say(
        f"In the {funnel} funnel{where}, {fmt('conversion_rate', rate)} of the users who "
        f"reached {names[first]} (step {first}, {users[first]:,} users) went on to "
        f"{names[last]} (step {last}, {users[last]:,} users){note} {ref}."
    )


def _step_pair(named: tuple[int, ...], count: int) -> tuple[int, int]:
    if len(named) >= 2:
        return min(named[0], named[-1]), max(named[0], named[-1])
    if len(named) == 1:
        return (1, named[0]) if named[0] > 1 else (1, count)
    return 1, count


def _funnel_period(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    draft: Draft,
    first: int,
    last: int,
    names: dict[int, str],
) -> None:
    period = question.period
    assert period is not None and question.funnel is not None
    complete = "is_complete" in _columns(conn, "funnel_daily")
    rows = conn.execute(
        "select step_index, sum(users)"
        + (", bool_and(is_complete)" if complete else ", true")
        + " from funnel_daily where funnel = $f and entry_date between $start and $end "
        "and step_index in ($a, $b) group by 1",
        {"f": question.funnel, "start": period.start, "end": period.end, "a": first, "b": last},
    ).fetchall()
    users = {index: int(count or 0) for index, count, _ in rows}
    ref = draft.cite(
        f"funnel_daily[funnel={question.funnel}, entry_date="
        f"{period.start.isoformat()}..{period.end.isoformat()}, step_index={first},{last}]",
        "table",
        f"funnel_daily, {question.funnel}",
        period.start,
    )
    if not users.get(first):
        draft.say(f"No user entered the {question.funnel} funnel {period.when} {ref}.")
        return
    rate = users.get(last, 0) / users[first]
    draft.say(
        f"Of the {users[first]:,} users who entered the {question.funnel} funnel "
        f"{period.when} and reached {names[first]}, {users.get(last, 0):,} reached "
        f"{names[last]}: {fmt('conversion_rate', rate)} {ref}."
    )
    if not all(done for _, _, done in rows):
        draft.say(
            "Some of those entries have not had their whole conversion window yet, so this may "
            "still rise."
        )


# --- retention ------------------------------------------------------------------------------


def answer_retention(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    for grain, number in question.retention:
        _retention_at(conn, question, draft, grain, number)


def _retention_at(
    conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft, grain: str, number: int
) -> None:
    period_label = f"{grain}-{number} retention"
    if question.dimension or question.segment:
        _retention_by_segment(conn, question, draft, grain, number, period_label)
        return
    columns = _columns(conn, "retention")
    where = "granularity = $g and mode = 'exact' and period = $n"
    if "definition" in columns:
        where += " and definition = 'any'"
    complete, cohort_filter = _complete_and_cohorts(columns, grain, number, question.period)
    row = conn.execute(
        f"select sum(retained_users), sum(cohort_users), count(*), min(cohort_start), "
        f"max(cohort_start) from retention where {where} and {complete}{cohort_filter}",
        {"g": grain, "n": number, **_period_params(question.period)},
    ).fetchone()
    retained, users, cohorts, first, last = row
    if not cohorts or not users:
        draft.say(
            f"No {grain} cohort has a complete {period_label} yet"
            f"{' among the cohorts of ' + question.period.label if question.period else ''}."
        )
        return
    ref = draft.cite(
        f"retention[granularity={grain}, mode=exact, period={number}, "
        f"cohort_start={first.isoformat()}..{last.isoformat()}]",
        "table",
        f"retention, {period_label}",
        first,
    )
    draft.say(
        f"{period_label.capitalize()} was {fmt('retention_rate', retained / users)}: "
        f"{int(retained):,} of {int(users):,} users of the {cohorts} {grain} cohorts from "
        f"{first.isoformat()} to {last.isoformat()} with a complete {grain} {number} came "
        f"back in it {ref}."
    )
    latest = conn.execute(
        f"select cohort_start, retention_rate, cohort_users from retention where {where} "
        f"and {complete}{cohort_filter} order by cohort_start desc limit 1",
        {"g": grain, "n": number, **_period_params(question.period)},
    ).fetchone()
    if latest and cohorts > 1:
        draft.say(
            f"The latest complete cohort ({latest[0].isoformat()}, {latest[2]:,} users) "
            f"retained {fmt('retention_rate', latest[1])} {ref}."
        )


def _complete_and_cohorts(
    columns: set[str], grain: str, number: int, period: Period | None
) -> tuple[str, str]:
    """The SQL that keeps complete periods only, and the cohorts of a named period."""
    if "is_complete" in columns:
        complete = "is_complete"
    else:  # before the is_complete column: period N ended on or before the last event date
        unit = {"day": "to_days", "week": "to_weeks", "month": "to_months"}[grain]
        complete = (
            f"cohort_start + {unit}(cast($n as integer) + 1) - interval 1 day <= "
            "(select max(metric_date) from daily_metrics)"
        )
    cohort_filter = " and cohort_start between $start and $end" if period else ""
    return complete, cohort_filter


def _period_params(period: Period | None) -> dict[str, dt.date]:
    return {"start": period.start, "end": period.end} if period else {}


def _retention_by_segment(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    draft: Draft,
    grain: str,
    number: int,
    period_label: str,
) -> None:
    """From `cohorts` (acquisition segment, weekly or monthly cohorts)."""
    if grain not in ("week", "month"):
        draft.say(
            f"Retention by segment is kept for week and month cohorts only (the cohorts table); "
            f"there is no {period_label} by segment."
        )
        return
    dimension = question.segment[0] if question.segment else question.dimension
    columns = _columns(conn, "cohorts")
    complete, cohort_filter = _complete_and_cohorts(columns, grain, number, question.period)
    complete = complete.replace("$n", "period_index")
    rows = conn.execute(
        f"select segment, sum(active_users), sum(cohort_users), min(cohort_start), "
        f"max(cohort_start) from cohorts where cohort_granularity = $g and dimension = $d "
        f"and period_index = $n and {complete}{cohort_filter} group by 1",
        {"g": grain, "d": dimension, "n": number, **_period_params(question.period)},
    ).fetchall()
    rates = sorted(
        ((active / users, segment, int(users)) for segment, active, users, _, _ in rows if users),
        key=lambda item: (-item[0], item[1]),
    )
    if not rates:
        draft.say(f"No {grain} cohort has a complete {period_label} by {dimension} yet.")
        return
    first = min(row[3] for row in rows)
    last = max(row[4] for row in rows)
    ref = draft.cite(
        f"cohorts[cohort_granularity={grain}, dimension={dimension}, period_index={number}, "
        f"cohort_start={first.isoformat()}..{last.isoformat()}]",
        "table",
        f"cohorts, {period_label} by {dimension}",
        first,
    )
    scope = f"{grain} cohorts from {first.isoformat()} to {last.isoformat()}"
    if question.segment:
        segment = question.segment[1]
        match = [item for item in rates if item[1] == segment]
        if not match:
            draft.say(f"The cohorts have no {dimension} {segment} users {ref}.")
            return
        rate, _, users = match[0]
        draft.say(
            f"{period_label.capitalize()} of users acquired through {dimension} {segment} was "
            f"{fmt('retention_rate', rate)} ({users:,} users in the {scope}) {ref}."
        )
        return
    listing = ", ".join(f"{segment} {fmt('retention_rate', rate)}" for rate, segment, _ in rates)
    ranked = [item for item in rates if item[1] not in ("unknown", "other")] or rates
    rate, segment, _ = ranked[-1] if question.lowest else ranked[0]
    word = "lowest" if question.lowest else "best"
    draft.say(
        f"By acquisition {dimension}, {segment} has the {word} {period_label}: "
        f"{fmt('retention_rate', rate)} over the {scope} {ref}. All: {listing}."
    )
