"""Hybrid retrieval over the corpus: vector search plus BM25 full-text search, fused with
reciprocal rank fusion (RRF), optionally filtered by kind and date range (CONTRACT §1 search).

The fusion is done here rather than by LanceDB's hybrid query so that one code path serves
dense-only, FTS-only and hybrid search (the benchmark compares them) and so that a date named
in the question can add ranked lists of its own: the same two searches restricted to nearby
days, and those chunks ordered by distance to the date. Chunks from those days then collect
more RRF votes and rise, while a question whose date matches nothing ranks as if undated.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assets.corpus.documents import KINDS
from assets.corpus.periods import MONTHS
from assets.corpus.store import TABLE_NAME, open_table
from pipelines import onnx_embedding
from pipelines.errors import EventpulseError
from pipelines.settings import Settings

MODES = ("hybrid", "dense", "fts")
RRF_K = 60  # the constant of Cormack et al. (2009); larger flattens the rank differences
MIN_CANDIDATES = 50  # per ranked list, before fusion and before keeping one chunk per doc
DATE_WINDOW_DAYS = 3
COLUMNS = ["chunk_id", "doc_id", "kind", "title", "source", "date", "text"]


@dataclass(frozen=True)
class Result:
    """One retrieved chunk. `score`: the RRF score when lists were fused, else the cosine
    similarity (dense) or BM25 score (FTS); higher is better in every case."""

    chunk_id: str
    doc_id: str
    kind: str
    title: str
    source: str
    date: dt.date | None
    text: str
    score: float


@dataclass(frozen=True)
class Filters:
    """Optional restrictions; `start`/`end` are inclusive dates."""

    kinds: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None

    def where(self) -> str | None:
        clauses = []
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown:
            raise EventpulseError(
                f"Unknown document kind {unknown[0]!r}; choose from {', '.join(KINDS)}."
            )
        if self.kinds:
            clauses.append("kind IN (" + ", ".join(f"'{kind}'" for kind in self.kinds) + ")")
        if self.start:
            clauses.append(f"date >= DATE '{self.start.isoformat()}'")
        if self.end:
            clauses.append(f"date <= DATE '{self.end.isoformat()}'")
        return " AND ".join(clauses) or None

    @property
    def has_dates(self) -> bool:
        return self.start is not None or self.end is not None


def search(
    home: Path,
    query: str,
    k: int = 10,
    *,
    filters: Filters | None = None,
    mode: str = "hybrid",
    max_per_doc: int = 1,
) -> list[Result]:
    """The `k` best chunks for one query (at most `max_per_doc` per document)."""
    return search_many(home, [query], k, filters=filters, mode=mode, max_per_doc=max_per_doc)[0]


def search_many(
    home: Path,
    queries: Sequence[str],
    k: int = 10,
    *,
    filters: Filters | None = None,
    mode: str = "hybrid",
    max_per_doc: int = 1,
) -> list[list[Result]]:
    """Results per query, in order; the table is opened and the queries embedded once.

    The queries are embedded in a worker thread while this one opens the table: importing
    LanceDB takes a second or more of Python, and ONNX Runtime releases the GIL while it loads
    the model and runs, so the two overlap on a cold start."""
    lancedb_dir = Settings(home=home).lancedb_dir
    if not (lancedb_dir / f"{TABLE_NAME}.lance").is_dir():
        open_table(lancedb_dir)  # its one sentence, before any work starts in the worker
    with ThreadPoolExecutor(max_workers=1) as pool:
        embedded = pool.submit(Retriever.embed_queries, queries, mode)
        retriever = Retriever.open(home)
        vectors = embedded.result()
    return [
        retriever.search(query, vector, k, filters=filters, mode=mode, max_per_doc=max_per_doc)
        for query, vector in zip(queries, vectors, strict=True)
    ]


class Retriever:
    """An open corpus table; reuse it for many queries (the date range is read once)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._date_range: tuple[dt.date, dt.date] | None = None
        self._date_range_read = False

    @classmethod
    def open(cls, home: Path) -> Retriever:
        return cls(open_table(Settings(home=home).lancedb_dir))

    @staticmethod
    def embed_queries(queries: Sequence[str], mode: str = "hybrid") -> list[np.ndarray | None]:
        _check_mode(mode)
        if mode == "fts":
            return [None] * len(queries)
        # ONNX Runtime, not torch: the same vectors (cosine > 0.999) at a fraction of the start-up.
        return list(onnx_embedding.embed([query or " " for query in queries]))

    def search(
        self,
        query: str,
        vector: np.ndarray | None,
        k: int = 10,
        *,
        filters: Filters | None = None,
        mode: str = "hybrid",
        max_per_doc: int = 1,
    ) -> list[Result]:
        _check_mode(mode)
        if not query.strip() or k <= 0:
            return []
        filters = filters or Filters()
        depth = max(MIN_CANDIDATES, 5 * k * max_per_doc)
        base = filters.where()
        legs = self._legs(query, vector, base, depth, mode)
        near = None if filters.has_dates else question_dates(query, self.date_range)
        if near is not None:
            lo, hi, center = near
            window = f"date BETWEEN DATE '{lo.isoformat()}' AND DATE '{hi.isoformat()}'"
            near_legs = self._legs(query, vector, _and(base, window), depth, mode)
            if any(near_legs):
                legs += [*near_legs, _by_date_distance(near_legs, center)]
        ranked = _fuse(legs) if sum(1 for leg in legs if leg) > 1 else _single(legs)
        return _per_document(ranked, k, max_per_doc)

    def date_range(self) -> tuple[dt.date, dt.date] | None:
        """First and last chunk date in the corpus (to give a year to "March 12")."""
        if not self._date_range_read:
            dates = (
                self.table.search()
                .where("date IS NOT NULL")
                .select(["date"])
                .limit(None)
                .to_arrow()
                .column("date")
                .to_pylist()
            )
            self._date_range = (min(dates), max(dates)) if dates else None
            self._date_range_read = True
        return self._date_range

    def _legs(
        self, query: str, vector: np.ndarray | None, where: str | None, depth: int, mode: str
    ) -> list[list[dict[str, Any]]]:
        legs = []
        if mode in ("hybrid", "dense"):
            if vector is None:
                raise EventpulseError("Dense search needs the query's vector; embed it first.")
            legs.append(self._dense(vector, where, depth))
        if mode in ("hybrid", "fts"):
            legs.append(self._fts(query, where, depth))
        return legs

    def _dense(self, vector: np.ndarray, where: str | None, depth: int) -> list[dict[str, Any]]:
        # Flat (exact) search: at corpus sizes here it is fast and loses no neighbour.
        builder = self.table.search(vector, vector_column_name="vector").distance_type("cosine")
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select([*COLUMNS, "_distance"]).limit(depth).to_list()
        for row in rows:
            row["score"] = 1.0 - row.pop("_distance")
        return rows

    def _fts(self, query: str, where: str | None, depth: int) -> list[dict[str, Any]]:
        builder = self.table.search(query, query_type="fts", fts_columns="text")
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select([*COLUMNS, "_score"]).limit(depth).to_list()
        for row in rows:
            row["score"] = row.pop("_score")
        return rows


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise EventpulseError(f"Unknown search mode {mode!r}; choose from {', '.join(MODES)}.")


def _and(left: str | None, right: str) -> str:
    return f"({left}) AND ({right})" if left else right


def _fuse(legs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (RRF_K + rank)."""
    rows: dict[str, dict[str, Any]] = {}
    scores: dict[str, float] = {}
    for leg in legs:
        for rank, row in enumerate(leg, start=1):
            rows.setdefault(row["chunk_id"], row)
            scores[row["chunk_id"]] = scores.get(row["chunk_id"], 0.0) + 1.0 / (RRF_K + rank)
    order = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))
    return [{**rows[chunk_id], "score": scores[chunk_id]} for chunk_id in order]


def _single(legs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return next((leg for leg in legs if leg), [])


def _by_date_distance(legs: list[list[dict[str, Any]]], center: dt.date) -> list[dict[str, Any]]:
    """The chunks of the date-window lists, closest day first (fused order breaks ties)."""
    fused = _fuse(legs)
    return sorted(fused, key=lambda row: abs((row["date"] - center).days))


def _per_document(ranked: list[dict[str, Any]], k: int, max_per_doc: int) -> list[Result]:
    taken: dict[str, int] = {}
    results = []
    for row in ranked:
        if taken.get(row["doc_id"], 0) >= max_per_doc:
            continue
        taken[row["doc_id"]] = taken.get(row["doc_id"], 0) + 1
        results.append(Result(**{column: row[column] for column in COLUMNS}, score=row["score"]))
        if len(results) == k:
            break
    return results


# --- dates named in a question ------------------------------------------------------------

_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_ISO_WEEK = re.compile(r"\b(\d{4})-?W(\d{1,2})\b", re.IGNORECASE)
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_ORDINAL}\b{_YEAR}", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"\b{_ORDINAL}\s+(?:of\s+)?{_MONTH}(?![a-z]){_YEAR}", re.IGNORECASE)
_SLASHED = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b")  # month/day, as US English


CorpusRange = Callable[[], tuple[dt.date, dt.date] | None]


def question_dates(
    question: str, corpus_range: CorpusRange = lambda: None
) -> tuple[dt.date, dt.date, dt.date] | None:
    """(first day, last day, centre) of the period a question names, or None.

    A day ("2026-03-12", "March 12", "12th of March 2026", "3/12") gives the days around it; an ISO
    week ("2026-W11") gives that week. A date without a year takes the year that puts it inside
    the corpus's dates (the latest such year), else the year of the corpus's last date;
    `corpus_range` is only called then."""
    match = _ISO_DAY.search(question)
    if match:
        day = _safe_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        return _around(day) if day else None
    match = _ISO_WEEK.search(question)
    if match:
        try:
            monday = dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            return None
        return monday, monday + dt.timedelta(days=6), monday
    for pattern, month_group, day_group in ((_MONTH_DAY, 1, 2), (_DAY_MONTH, 2, 1)):
        match = pattern.search(question)
        if match:
            month = MONTHS[match.group(month_group).lower().rstrip(".")]
            day_of_month = int(match.group(day_group))
            year = int(match.group(3)) if match.group(3) else None
            day = _with_year(month, day_of_month, year, corpus_range)
            return _around(day) if day else None
    match = _SLASHED.search(question)
    if match:
        month, day_of_month = int(match.group(1)), int(match.group(2))
        if month > 12:  # 12/3 is ambiguous, 13/3 is not: day first
            month, day_of_month = day_of_month, month
        year = int(match.group(3)) if match.group(3) else None
        day = _with_year(month, day_of_month, year, corpus_range)
        return _around(day) if day else None
    return None


def _around(day: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    window = dt.timedelta(days=DATE_WINDOW_DAYS)
    return day - window, day + window, day


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _with_year(month: int, day: int, year: int | None, corpus_range: CorpusRange) -> dt.date | None:
    if year is not None:
        return _safe_date(year, month, day)
    first, last = corpus_range() or (dt.date.today(), dt.date.today())
    for candidate_year in range(last.year, first.year - 1, -1):
        candidate = _safe_date(candidate_year, month, day)
        if candidate and first <= candidate <= last:
            return candidate
    return _safe_date(last.year, month, day)


# --- output (CONTRACT §1: eventpulse search) -------------------------------------------------


def result_json(result: Result) -> dict[str, Any]:
    return {
        "doc_id": result.doc_id,
        "chunk_id": result.chunk_id,
        "kind": result.kind,
        "title": result.title,
        "date": result.date.isoformat() if result.date else None,
        "score": round(float(result.score), 6),
        "text": result.text,
    }


def query_results_json(query: str, results: Sequence[Result]) -> dict[str, Any]:
    """One line of `eventpulse search --queries-file` (and the object of `search --json`)."""
    return {"query": query, "results": [result_json(result) for result in results]}


def format_results(results: Sequence[Result], width: int = 240) -> str:
    """Human-readable results for `eventpulse search QUERY`."""
    if not results:
        return "No results."
    lines = []
    for rank, result in enumerate(results, start=1):
        date = result.date.isoformat() if result.date else "-"
        lines.append(f"{rank}. {result.doc_id}  [{result.kind}, {date}, score {result.score:.4f}]")
        lines.append(f"   {result.title}")
        body = " ".join(result.text.split("\n", 2)[-1].split())
        lines.append(f"   {body[:width]}{'…' if len(body) > width else ''}")
    return "\n".join(lines)
