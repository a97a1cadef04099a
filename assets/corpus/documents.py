"""RAG corpus documents and chunks (CONTRACT §4): from the glossary, `docs/`, the warehouse
and the reports to stable, content-addressed chunks ready for embedding.

Dagster-free and model-free: `collect_documents` reads what exists now (each source is skipped
when absent, because the stages that produce them may not have run yet) and `chunk_documents`
splits documents along headings and paragraphs. Nothing here embeds or writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import Settings

KINDS = ("report", "anomaly", "funnel", "cohort", "glossary", "doc")
# Part of every chunk id: a different model must re-embed everything, never mix vector spaces.
EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"
MAX_CHUNK_TOKENS = 320  # the model reads 256 word pieces; FTS reads the whole chunk
OVERLAP_TOKENS = 40
USER_DOC_SUFFIXES = (".md", ".markdown", ".txt", ".jsonl")
TITLE_SEPARATOR = " › "

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_STRUCTURED_LINE = re.compile(r"^\s*(\||[-*+]\s|\d+[.)]\s)")
_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\([^)]*\)\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAILY_REPORT = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$")
_WEEKLY_REPORT = re.compile(r"^(\d{4})-W(\d{2})\.md$")


@dataclass(frozen=True)
class Document:
    """One source document; `body` is Markdown when `markdown`, else plain paragraphs."""

    doc_id: str
    kind: str
    title: str
    source: str
    date: dt.date | None
    body: str
    markdown: bool = False


@dataclass(frozen=True)
class Chunk:
    """One row of the corpus table, before its vector (CONTRACT §4)."""

    chunk_id: str
    doc_id: str
    kind: str
    title: str
    source: str
    date: dt.date | None
    text: str


@dataclass
class Collection:
    """Documents found now, plus one sentence per input that had to be skipped."""

    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- collecting -----------------------------------------------------------------------------


def collect_documents(settings: Settings) -> Collection:
    """Every document the corpus should hold now; absent sources are skipped."""
    collection = Collection(documents=glossary_documents())
    collection.documents += user_documents(settings.docs_dir, collection.problems)
    collection.documents += warehouse_documents_if_any(settings.home, collection.problems)
    collection.documents += report_documents(settings.reports_dir)
    collection.documents = _unique_doc_ids(collection.documents, collection.problems)
    return collection


def _unique_doc_ids(documents: list[Document], problems: list[str]) -> list[Document]:
    seen: set[str] = set()
    unique = []
    for document in documents:
        if document.doc_id in seen:
            problems.append(
                f"{document.source}: document id {document.doc_id!r} appears twice; "
                "kept the first, give the other line its own id."
            )
            continue
        seen.add(document.doc_id)
        unique.append(document)
    return unique


def glossary_documents() -> list[Document]:
    """One `glossary:<term>` document per metric and table of the contract."""
    return [
        Document(
            doc_id=f"glossary:{term}",
            kind="glossary",
            title=f"Glossary: {title}",
            source="glossary (CONTRACT §3)",
            date=None,
            body=text,
        )
        for term, (title, text) in GLOSSARY.items()
    ]


def user_documents(docs_dir: Path, problems: list[str]) -> list[Document]:
    """`docs/**/*.md|.txt` as one document each; `*.jsonl` as one document per line."""
    if not docs_dir.is_dir():
        return []
    documents: list[Document] = []
    for path in sorted(docs_dir.rglob("*")):
        relative = path.relative_to(docs_dir)
        hidden = any(part.startswith(".") for part in relative.parts)
        if hidden or not path.is_file() or path.suffix.lower() not in USER_DOC_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            problems.append(f"docs/{relative.as_posix()}: unreadable ({exc.strerror}); skipped.")
            continue
        if path.suffix.lower() == ".jsonl":
            documents += _jsonl_documents(relative.as_posix(), text, problems)
        else:
            documents.append(_file_document(relative.as_posix(), path.suffix.lower(), text))
    return documents


def _file_document(relative: str, suffix: str, text: str) -> Document:
    markdown = suffix in (".md", ".markdown")
    title = relative
    if markdown:
        first = next((line for line in text.splitlines() if line.strip()), "")
        heading = _HEADING.match(first)
        if heading and len(heading.group(1)) == 1:
            title = heading.group(2)
    return Document(
        doc_id=f"doc:{relative}",
        kind="doc",
        title=title,
        source=f"docs/{relative}",
        date=None,
        body=text,
        markdown=markdown,
    )


def _jsonl_documents(relative: str, text: str, problems: list[str]) -> Iterator[Document]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"docs/{relative} line {line_no}: not valid JSON; skipped.")
            continue
        body = record.get("text") if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            problems.append(f"docs/{relative} line {line_no}: no `text` string; skipped.")
            continue
        line_id = str(record.get("id") or record.get("_id") or f"line{line_no}")
        title = str(record.get("title") or f"{relative} {line_id}")
        yield Document(
            doc_id=f"doc:{relative}:{line_id}",
            kind="doc",
            title=title,
            source=f"docs/{relative}",
            date=_optional_date(record.get("date")),
            body=body,
        )


def _optional_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def report_documents(reports_dir: Path) -> list[Document]:
    """One document per daily and weekly Markdown report; chunking splits its sections."""
    documents = []
    for path in sorted((reports_dir / "daily").glob("*.md")):
        match = _DAILY_REPORT.match(path.name)
        day = _optional_date(match.group(1)) if match else None
        if day:
            title = f"Daily report {day.isoformat()}"
            documents.append(_report(path, f"report:daily:{day.isoformat()}", title, day))
    for path in sorted((reports_dir / "weekly").glob("*.md")):
        match = _WEEKLY_REPORT.match(path.name)
        if not match:
            continue
        week = f"{match.group(1)}-W{match.group(2)}"
        try:
            monday = dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            continue
        sunday = monday + dt.timedelta(days=6)
        title = f"Weekly report {week} ({monday.isoformat()} to {sunday.isoformat()})"
        documents.append(_report(path, f"report:weekly:{week}", title, monday))
    return documents


def _report(path: Path, doc_id: str, title: str, day: dt.date) -> Document:
    text = _HTML_COMMENT.sub("", path.read_text(encoding="utf-8", errors="replace"))
    # Figures are PNG links: noise for retrieval (their numbers are in the report's tables).
    text = "\n".join(line for line in text.splitlines() if not _IMAGE_LINE.match(line))
    source = f"reports/{path.parent.name}/{path.name}"
    return Document(doc_id, "report", title, source, day, text, markdown=True)


# --- warehouse documents ------------------------------------------------------------------


def warehouse_documents_if_any(home: Path, problems: list[str] | None = None) -> list[Document]:
    """Warehouse documents, or none when there is no warehouse yet."""
    try:
        with warehouse.reader(home) as conn:
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
    """One document per flagged anomaly: its explanation, numbers and neighbouring days."""
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
    documents = []
    for row in anomalies:
        key = (row["metric_date"], row["metric"], row["dimension"], row["segment"])
        documents.append(_anomaly_document(row, neighbours.get(key, [])))
    return documents


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
        f"for {where} was {_number(metric, value)} against an expected "
        f"{_number(metric, expected)}: it {moved} the expected value "
        f"({_relative_change(value, expected)}), a {direction}.",
        f"Metric {metric}, dimension {dimension}, segment {segment}, "
        f"anomaly score {_fixed(row['score'], 2)} (0 to 1, higher is more anomalous).",
    ]
    if days:
        values = ", ".join(f"{d.isoformat()} {_number(metric, v)}" for d, v in days)
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
        "from funnel_daily group by all order by funnel, week_start, step_index",
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
            f"{_percent(_share(step['users'], entered))} of entrants and "
            f"{_percent(_share(step['users'], before['users']))} of the previous step."
        )
    overall = _share(steps[-1]["users"], entered)
    closing = f"Overall conversion of funnel {funnel} in week {label}: {_percent(overall)}"
    if previous_overall is not None and overall is not None:
        change = (overall - previous_overall) * 100
        closing += f" (previous week {_percent(previous_overall)}, {change:+.1f} points)"
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
            f"{_percent(step['conversion_from_first'])} of step 1, "
            f"{_percent(step['conversion_from_previous'])} of the previous step"
        )
        if step["step_index"] > 1 and step["median_seconds_from_previous"] is not None:
            sentence += f", median {_duration(step['median_seconds_from_previous'])} after it"
        sentences.append(sentence + ".")
    for (dimension, segment), steps in sorted(segments.items()):
        if dimension == "all" or not steps:
            continue
        sentences.append(
            f"{dimension} {segment}: {steps[0]['users']:,} entered, "
            f"{_percent(steps[-1]['conversion_from_first'])} reached {steps[-1]['step']}."
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
            f"{granularity} {p['period_index']} {_percent(p['retention_rate'])} "
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
        retained = _percent(first_period["retention_rate"]) if first_period else "not yet known"
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
        listed = ", ".join(f"{s.isoformat()} {_percent(r)} of {n:,}" for s, r, n in points)
        sentence = (
            f"{granularity.capitalize()}-{period} retention of {granularity}ly cohorts of {who} "
            f"(acquisition {dimension} {segment}) by cohort start: {listed}."
        )
        (first, first_rate, _), (last, last_rate, _) = points[0], points[-1]
        if len(points) > 1 and first_rate is not None and last_rate is not None:
            change = (last_rate - first_rate) * 100
            sentence += (
                f" It went from {_percent(first_rate)} ({first.isoformat()}) to "
                f"{_percent(last_rate)} ({last.isoformat()}), {change:+.1f} points."
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


# --- number formatting ----------------------------------------------------------------------


def _gt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a > b


def _number(metric: str, value: float | None) -> str:
    if value is None:
        return "unknown"
    if metric == "conversion_rate":
        return _percent(value)
    if metric == "revenue":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- chunking -------------------------------------------------------------------------------


def chunk_documents(
    documents: Iterable[Document],
    max_tokens: int = MAX_CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[Chunk]:
    """All chunks of all documents, in order; identical chunks of one document appear once."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for document in documents:
        for chunk in chunk_document(document, max_tokens, overlap_tokens):
            if chunk.chunk_id not in seen:
                seen.add(chunk.chunk_id)
                chunks.append(chunk)
    return chunks


def chunk_document(
    document: Document,
    max_tokens: int = MAX_CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[Chunk]:
    """Chunks that never cross a heading; each starts with its title and heading path, so a
    chunk read alone (by the model, by FTS, by a person) still says what it is about."""
    chunks = []
    for path, blocks in _sections(document):
        title = TITLE_SEPARATOR.join([document.title, *path])
        budget = max(max_tokens - count_tokens(title), 50)
        day = document.date
        if document.kind == "doc":
            day = _date_in(path) or day
        for body in _pack(blocks, budget, overlap_tokens):
            chunks.append(_chunk(document, title, day, f"{title}\n\n{body}"))
    return chunks


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to the model's word pieces for English prose."""
    return len(_TOKEN.findall(text))


def chunk_id_for(
    doc_id: str, kind: str, title: str, source: str, date: dt.date | None, text: str
) -> str:
    """Content hash of everything stored with the vector: same content, same id, no re-embed."""
    key = [EMBEDDING_MODEL_ID, doc_id, kind, title, source, date and date.isoformat(), text]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:32]


def _chunk(document: Document, title: str, day: dt.date | None, text: str) -> Chunk:
    chunk_id = chunk_id_for(document.doc_id, document.kind, title, document.source, day, text)
    return Chunk(chunk_id, document.doc_id, document.kind, title, document.source, day, text)


def _date_in(path: tuple[str, ...]) -> dt.date | None:
    """A user document's section headed by a date (a changelog entry) is dated by it."""
    for heading in reversed(path):
        match = _ISO_DATE.search(heading)
        if match:
            day = _optional_date(match.group(0))
            if day:
                return day
    return None


def _sections(document: Document) -> list[tuple[tuple[str, ...], list[str]]]:
    """(heading path, paragraph blocks) per section; a leading H1 is the title, not a path."""
    if not document.markdown:
        return [((), _paragraphs(document.body.splitlines()))]
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False
    first_heading = True

    def close() -> None:
        blocks = _paragraphs(lines)
        if blocks:
            sections.append((tuple(text for _, text in stack), blocks))
        lines.clear()

    for line in document.body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        close()
        level, text = len(heading.group(1)), heading.group(2)
        is_title = first_heading and level == 1 and not sections
        first_heading = False
        while stack and stack[-1][0] >= level:
            stack.pop()
        if not is_title:
            stack.append((level, text))
    close()
    return sections


def _paragraphs(lines: list[str]) -> list[str]:
    """Blocks separated by blank lines; a fenced code block stays one block."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current).strip("\n"))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [block for block in blocks if block.strip()]


def _pack(blocks: list[str], budget: int, overlap_tokens: int) -> list[str]:
    """Greedily fill chunks with whole paragraphs (split only when one is too long); a new
    chunk of the same section repeats the last sentences of the previous one (overlap)."""
    # Long paragraphs are cut a little under budget so that the overlap still fits.
    piece_budget = max(budget - overlap_tokens, budget // 2)
    pieces = [piece for block in blocks for piece in _split_block(block, piece_budget)]
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        tokens = count_tokens(piece)
        if current and size + tokens > budget:
            chunks.append(current)
            tail = _tail(current[-1], overlap_tokens)
            current, size = ([tail], count_tokens(tail)) if tail else ([], 0)
            if current and size + tokens > budget:
                current, size = [], 0
        current.append(piece)
        size += tokens
    if current:
        chunks.append(current)
    return ["\n\n".join(chunk) for chunk in chunks]


def _tail(piece: str, overlap_tokens: int) -> str:
    """The last whole sentences of a prose piece, up to `overlap_tokens` (none for tables)."""
    if overlap_tokens <= 0 or _is_structured(piece):
        return ""
    tail: list[str] = []
    size = 0
    for sentence in reversed(_sentences(piece)):
        size += count_tokens(sentence)
        if size > overlap_tokens:
            break
        tail.insert(0, sentence)
    if len(tail) == len(_sentences(piece)):
        return ""  # the whole piece would repeat: no overlap rather than a duplicate
    return " ".join(tail)


def _split_block(block: str, budget: int) -> list[str]:
    """A paragraph that fits, or its lines (tables, lists, code) or sentences (prose) grouped
    to fit; a table keeps its header row in every part."""
    if count_tokens(block) <= budget:
        return [block]
    if _is_structured(block):
        lines = block.splitlines()
        header = lines[:2] if len(lines) > 2 and set(lines[1].strip()) <= set("|-: ") else []
        body = lines[len(header) :]
        header_text = "\n".join(header)
        inner = max(budget - count_tokens(header_text), 20)
        groups = _group(body, inner, "\n")
        return [f"{header_text}\n{g}" if header else g for g in groups]
    prose = " ".join(line.strip() for line in block.splitlines())
    return _group(_sentences(prose), budget, " ")


def _is_structured(block: str) -> bool:
    lines = block.splitlines()
    return bool(_FENCE.match(lines[0])) or (
        len(lines) > 1 and all(_STRUCTURED_LINE.match(line) for line in lines if line.strip())
    )


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _group(units: list[str], budget: int, joiner: str) -> list[str]:
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for unit in units:
        for part in _hard_split(unit, budget):
            tokens = count_tokens(part)
            if current and size + tokens > budget:
                groups.append(joiner.join(current))
                current, size = [], 0
            current.append(part)
            size += tokens
    if current:
        groups.append(joiner.join(current))
    return groups


def _hard_split(unit: str, budget: int) -> list[str]:
    """Last resort for one over-long sentence or line: windows of whitespace-separated words."""
    if count_tokens(unit) <= budget:
        return [unit]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for word in unit.split():
        tokens = count_tokens(word)
        if current and size + tokens > budget:
            parts.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += tokens
    if current:
        parts.append(" ".join(current))
    return parts


# --- glossary (CONTRACT §3) -----------------------------------------------------------------

GLOSSARY: dict[str, tuple[str, str]] = {
    "events": (
        "events (table and metric)",
        "The events table holds clean, deduplicated events: event_id, user_id, event, ts (UTC "
        "timestamp), event_date, platform, channel, campaign, country, revenue (NULL when "
        "absent), properties (JSON), arrival_date and source_file. Every input record ends in "
        "exactly one place: the events table or the quarantine table with a reason. As a "
        "metric in daily_metrics, events counts the day's events in a segment.",
    ),
    "quarantine": (
        "quarantine (table)",
        "The quarantine table keeps rejected input records with arrival_date, source_file, "
        "line_no, reason, detail and raw. Reasons: malformed_record (unparseable line or row), "
        "missing_user_id, missing_event, missing_timestamp, invalid_timestamp, "
        "future_timestamp (more than 1 day after the end of the arrival day), invalid_revenue "
        "(not a number), invalid_type (a field of the wrong JSON type), oversized_record (over "
        "1 MiB) and duplicate_event_id (another copy of that event id is the one kept). "
        "Nothing is dropped silently.",
    ),
    "ingest_log": (
        "ingest_log (table)",
        "The ingest_log table has one row per partition load: arrival_date, files, records, "
        "loaded, quarantined, duplicates, started_at, finished_at. For each arrival day, the "
        "records read equal its rows in events plus its rows in quarantine. Loading a "
        "partition again replaces that partition's rows, so counts never double.",
    ),
    "users": (
        "users (table)",
        "The users table has one row per user: user_id, first_seen_at, first_seen_date, "
        "acquisition_platform, acquisition_channel and acquisition_campaign (from the user's "
        "first event), last_seen_at, events, sessions, purchases and revenue.",
    ),
    "sessions": (
        "sessions (table and metric)",
        "A session is a run of one user's events without a gap longer than "
        "session_gap_seconds (default 1800 seconds, 30 minutes); a longer gap starts a new "
        "session. The sessions table has session_id, user_id, started_at, ended_at, "
        "duration_seconds, events, platform and channel (of the session's first event). As a "
        "metric in daily_metrics, sessions counts sessions started that day, in the segment "
        "of their first event.",
    ),
    "daily_metrics": (
        "daily_metrics (table)",
        "The daily_metrics table has one row per day and segment: metric_date, dimension "
        "('all', 'platform' or 'channel'), segment ('all' for dimension 'all'), active_users, "
        "new_users, sessions, events, purchasers, revenue and conversion_rate. Every day from "
        "the first to the last event date has an ('all', 'all') row, zeros included.",
    ),
    "segment": (
        "dimension and segment",
        "A dimension splits users: 'all' (everyone), 'platform' (for example web, ios, "
        "android) or 'channel' (acquisition or traffic source, for example organic or ads). "
        "A segment is one value of a dimension. In daily_metrics a user is active in a segment "
        "on a day when they have an event that day whose own platform or channel is that "
        "segment; cohorts use the acquisition segment of the user's first event, fixed for life.",
    ),
    "active_users": (
        "active users (metric)",
        "active_users (daily active users, DAU): distinct users with at least one event that "
        "day in the segment.",
    ),
    "new_users": (
        "new users (metric)",
        "new_users: users whose first-ever event is that day, attributed to the segment of "
        "that first event.",
    ),
    "purchasers": (
        "purchasers (metric)",
        "purchasers: distinct users with a conversion event (default purchase) that day in the "
        "segment.",
    ),
    "revenue": (
        "revenue (metric)",
        "revenue: the sum of the revenue property of the day's events in the segment (0 when "
        "there is none). Cohort revenue is the cohort's revenue in a period.",
    ),
    "conversion_rate": (
        "conversion rate (metric)",
        "conversion_rate = purchasers / active_users, per day and segment.",
    ),
    "funnel_steps": (
        "funnel_steps (table)",
        "The funnel_steps table has one row per funnel, segment and step over the whole "
        "history: funnel, dimension, segment, step_index (1-based), step (event name), users, "
        "conversion_from_first (users at the step / users at step 1), conversion_from_previous "
        "(users at the step / users at the previous step, 1.0 for step 1), "
        "median_seconds_from_previous and avg_seconds_from_previous.",
    ),
    "funnel_daily": (
        "funnel_daily (table)",
        "The funnel_daily table has funnel, entry_date, step_index, step and users: the users "
        "whose counted attempt entered the funnel on that date and reached at least that step.",
    ),
    "funnel": (
        "funnel (definition)",
        "A funnel is an ordered list of events (steps) within a window (default 7 days). In "
        "ordered mode an attempt starts at any step-1 event; each next step is the earliest "
        "event of that step at or after the previous matched step and within the window. A "
        "user reaches the furthest step any attempt reaches; the counted attempt is the "
        "earliest one reaching it, and its entry event's platform and channel are the user's "
        "segment (first-touch). Strict mode breaks an attempt on any other event between two "
        "matched steps; unordered mode accepts the steps in any order within the window.",
    ),
    "retention": (
        "retention (table)",
        "The retention table has granularity ('day', 'week' or 'month'), mode ('exact' or "
        "'on_or_after'), cohort_start, cohort_users, period, retained_users and retention_rate. "
        "A cohort is the calendar period of the user's first-ever event; period N is the "
        "calendar difference between the cohort's period and the activity's period. Exact: "
        "retained in period N when the user has an event in period N. On or after: when the "
        "user has an event in period N or any later period. Period 0 is 1.0.",
    ),
    "retention_rate": (
        "retention rate (metric)",
        "retention_rate: retained users (or active cohort users) in a period divided by the "
        "cohort's users.",
    ),
    "cohorts": (
        "cohorts (table)",
        "The cohorts table holds acquisition cohorts: cohort_granularity ('week' or 'month'), "
        "cohort_start, dimension, segment (the user's acquisition platform or channel, fixed "
        "for life), cohort_users, period_index, active_users, retention_rate, churn_rate, "
        "revenue, cumulative_revenue and ltv.",
    ),
    "churn_rate": (
        "churn rate (metric)",
        "churn_rate = 1 - retention_rate for a cohort and period.",
    ),
    "ltv": (
        "LTV, lifetime value (metric)",
        "ltv = cumulative_revenue / cohort_users: the cohort's revenue per user through that "
        "period. cumulative_revenue is the cohort's revenue through that period.",
    ),
    "anomalies": (
        "anomalies (table)",
        "The anomalies table has one row per scored day, metric and segment: metric_date, "
        "metric, dimension, segment, value, expected, score (0 to 1, higher is more "
        "anomalous), is_anomaly, direction ('spike' or 'dip') and explanation (a sentence "
        "naming the metric, the segment, the value, the expected value and the relative "
        "change). Metrics scored: active_users, new_users, sessions, events, purchasers, "
        "revenue and conversion_rate, for dimension all and every platform and channel.",
    ),
    "corpus": (
        "corpus (RAG table)",
        "The corpus is the LanceDB table behind eventpulse ask and search: chunk_id, doc_id, "
        "kind (report, anomaly, funnel, cohort, glossary or doc), title, source, date, text "
        "and vector (all-MiniLM-L6-v2). It holds reports, flagged anomalies, weekly funnel "
        "and cohort summaries, this glossary and the user's documents under docs/.",
    ),
}
