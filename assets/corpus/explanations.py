""" "Why" and "what happened": the flagged anomalies of the period (with the segment that drives
an overall row), the dated sections of the user's documents (a changelog names releases and
incidents by date) and that day's report, each claim cited.

A question about a metric and a period ("why did X drop last week", "what happened to X on
...") first states what X did, from daily_metrics: when it did not drop,
the answer says so instead of explaining a drop that never happened. When neither an anomaly
nor a dated document speaks of the period, the answer says that nothing explains it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from assets.corpus.facts import (
    Draft,
    answer_value,
    clipped,
    metric_total,
    upper_first,
)
from assets.corpus.periods import Period
from assets.corpus.questions import METRIC_LABELS, Catalog, Question

MAX_DAYS = 3  # incident days an answer lists (newest first)
MAX_ROWS_PER_DAY = 4
MAX_SECTIONS = 3
_DOWN = re.compile(r"\b(drop\w*|fell|fall\w*|decline\w*|decrease\w*|dip\w*|down|lower|los[st])\b")
_UP = re.compile(r"\b(spike\w*|rise|rose|risen|jump\w*|increase\w*|surge\w*|up|higher|grew)\b")
_ISO_DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Section:
    """A dated section of a user document: a heading that carries an ISO date (or two, for
    an incident over several days: `day` to `last_day`)."""

    doc_id: str
    path: str
    heading: str
    day: dt.date
    last_day: dt.date
    body: str


def answer_happened(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    catalog: Catalog,
    draft: Draft,
    docs_dir: Path,
    quotable: re.Pattern[str],
) -> None:
    """Fill `draft` with what the data and documents say about the question's period."""
    direction = _direction(question.text.lower())
    period = question.period
    if question.metric and period is not None:  # first what the metric did, then why
        period = clipped(period, catalog)
        _state_movement(conn, question, draft, period, direction)
    search = period or Period(
        catalog.first_day,
        catalog.last_day,
        f"all data ({catalog.first_day.isoformat()} to {catalog.last_day.isoformat()})",
        "range",
    )
    days = _flagged(conn, question, search, direction)
    for day, rows in days[:MAX_DAYS]:
        _say_day(draft, day, rows)
    listed = [day for day, _ in days[:MAX_DAYS]]
    if period is None:  # over the whole history, only what the days listed above explain
        sections = [
            s
            for s in _sections_in(docs_dir, search, question)
            if any(s.day <= day <= s.last_day for day in listed)
        ]
    else:
        sections = _sections_in(docs_dir, search, question)
        if not days and sections:
            what = f" for {METRIC_LABELS[question.metric]}" if question.metric else ""
            draft.say(f"No anomaly was flagged{what} {search.when}.")
    for section in [s for s in sections if not quotable.search(s.heading)][:MAX_SECTIONS]:
        marker = draft.cite(
            section.doc_id, "doc", f"{section.path}: {section.heading}", section.day
        )
        summary = _summary(section.body, quotable)
        said = f" {summary}" if summary else ""
        draft.say(
            f'{section.path} for {section.day.isoformat()}: "{section.heading}".{said} {marker}'
        )
    if not days and not sections:
        what = f" for {METRIC_LABELS[question.metric]}" if question.metric else ""
        draft.say(
            f"No anomaly was flagged{what} {search.when}, and no dated document mentions "
            f"{'that day' if search.grain == 'day' else 'that period'}."
        )
    if period is not None and period.grain == "day":
        already = {c.ref for c in draft.citations}
        report = draft.cite_report(period)
        if report and f"report:daily:{period.start.isoformat()}" not in already:
            draft.say(f"That day's report is {report}.")


def _direction(lowered: str) -> str | None:
    if _DOWN.search(lowered):
        return "dip"
    if _UP.search(lowered):
        return "spike"
    return None


def _state_movement(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    draft: Draft,
    period: Period,
    direction: str | None,
) -> None:
    """What the metric did, against the period before, and whether the question's premise
    (a drop, a rise) holds."""
    metric = question.metric
    assert metric is not None
    dimension, segment = question.segment or ("all", "all")
    now, _ = metric_total(conn, metric, period, dimension, segment)
    before, before_rows = metric_total(conn, metric, period.previous(), dimension, segment)
    if direction and before_rows and now is not None and before is not None:
        fell = now < before
        if (direction == "dip") != fell and now != before:
            label = METRIC_LABELS[metric]
            draft.say(
                f"{upper_first(label)} did not {'drop' if direction == 'dip' else 'rise'} "
                f"{period.when}; it {'rose' if direction == 'dip' else 'fell'}."
            )
    answer_value(conn, _with_period(question, period), draft)


def _with_period(question: Question, period: Period) -> Question:
    from dataclasses import replace

    return replace(question, period=period)


def _flagged(
    conn: duckdb.DuckDBPyConnection, question: Question, period: Period, direction: str | None
) -> list[tuple[dt.date, list[tuple]]]:
    """Flagged rows of the period, grouped by day, newest day first; filtered by the metric,
    segment and direction the question names."""
    columns = {
        row[0]
        for row in conn.execute(
            "select column_name from information_schema.columns where table_name = 'anomalies'"
        ).fetchall()
    }
    if not columns:
        return []
    driver = "driver" if "driver" in columns else "null"
    sql = (
        f"select metric_date, metric, dimension, segment, explanation, {driver} from anomalies "
        "where is_anomaly and metric_date between $start and $end"
    )
    params: dict[str, object] = {"start": period.start, "end": period.end}
    if question.metric:
        sql += " and metric = $metric"
        params["metric"] = question.metric
    if question.segment:
        sql += (
            " and ((dimension = $d and segment = $s) or coalesce(" + driver + ", '') ilike $like)"
        )
        params.update(d=question.segment[0], s=question.segment[1])
        params["like"] = f"%{question.segment[1]}%"
    if direction:
        sql += " and direction = $direction"
        params["direction"] = direction
    sql += " order by metric_date desc, dimension = 'all' desc, score desc"
    days: dict[dt.date, list[tuple]] = {}
    for row in conn.execute(sql, params).fetchall():
        days.setdefault(row[0], []).append(row)
    return list(days.items())


def _say_day(draft: Draft, day: dt.date, rows: list[tuple]) -> None:
    claims = []
    for _, metric, dimension, segment, explanation, driver in rows[:MAX_ROWS_PER_DAY]:
        marker = draft.cite(
            f"anomalies[metric_date={day.isoformat()}, metric={metric}, dimension={dimension}, "
            f"segment={segment}]",
            "table",
            f"anomalies, {metric} {dimension}={segment}",
            day,
        )
        text = explanation.rstrip(".") if explanation else f"{metric} for {dimension}={segment}"
        if driver and str(driver) not in text:
            text += f", driven by {driver}"
        claims.append(f"{text} {marker}")
    more = len(rows) - MAX_ROWS_PER_DAY
    extra = f"; and {more} more flagged rows that day" if more > 0 else ""
    count = f"{len(rows)} anomal{'y was' if len(rows) == 1 else 'ies were'}"
    draft.say(f"On {day.isoformat()} {count} flagged: " + "; ".join(claims) + f"{extra}.")


def dated_sections(docs_dir: Path) -> list[Section]:
    """Sections of `docs/**/*.md` whose heading carries an ISO date (a changelog's entries)."""
    sections: list[Section] = []
    if not docs_dir.is_dir():
        return sections
    root = docs_dir.resolve()
    for path in sorted(docs_dir.rglob("*.md")):
        if not path.is_file() or not path.resolve().is_relative_to(root):
            continue  # a link out of docs/ is never read (as the corpus build)
        relative = path.relative_to(docs_dir).as_posix()
        heading, days, body = "", [], []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + ["# end"]:
            match = _HEADING.match(line)
            if match:
                if days:
                    text = "\n".join(body).strip()
                    doc_id = f"doc:{relative}"
                    sections.append(Section(doc_id, relative, heading, days[0], days[-1], text))
                heading, body = match.group(2), []
                days = sorted(d for d in map(_date, _ISO_DAY.findall(heading)) if d)
            else:
                body.append(line)
    return sections


def _sections_in(docs_dir: Path, period: Period, question: Question) -> list[Section]:
    words = [w for w in (question.segment[1] if question.segment else None,) if w]
    if question.metric:
        words.append(METRIC_LABELS[question.metric].split()[0])
    found = [
        s for s in dated_sections(docs_dir) if s.day <= period.end and s.last_day >= period.start
    ]

    def relevance(section: Section) -> tuple[int, dt.date]:
        text = f"{section.heading} {section.body}".lower()
        return (sum(word.lower() in text for word in words), section.day)

    return sorted(found, key=relevance, reverse=True)


def _summary(body: str, quotable: re.Pattern[str]) -> str:
    """The first two sentences of a section, never one addressed to an assistant."""
    sentences = [
        s.strip()
        for line in body.splitlines()
        if line.strip() and not line.lstrip().startswith(("|", "#", "```", "!["))
        for s in _SENTENCE_END.split(line.strip())
    ]
    kept = [s for s in sentences if s and not quotable.search(s)][:2]
    return " ".join(kept)


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
