"""Route a question to the marts when it is about their numbers: parse it against what the
warehouse holds, then answer from `facts` (values, segments, funnels, retention) or
`explanations` (why, what happened). Returns None when the question is for the corpus instead.

Only DuckDB is imported here: no torch, no LanceDB, no model, so these answers start fast.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from assets.corpus.explanations import answer_happened
from assets.corpus.facts import (
    Draft,
    answer_best_day,
    answer_by_segment,
    answer_value,
    clipped,
    load_catalog,
    missing_segment_sentence,
    outside_data,
)
from assets.corpus.funnel_facts import answer_funnel, answer_funnel_time
from assets.corpus.periods import Period
from assets.corpus.questions import Catalog, Question, parse_question
from assets.corpus.retention_facts import answer_retention

MARTS = "daily_metrics, funnel_steps, funnel_daily, retention, cohorts, anomalies"


def structured_answer(
    home: Path, question: str, quotable: re.Pattern[str], wall_today: dt.date | None = None
) -> tuple[Draft, Question] | None:
    """The answer from the marts, or None (no warehouse yet, or not a question about them)."""
    from pipelines import warehouse  # DuckDB only; imported here so the corpus path skips it

    if not warehouse.published_path(home).exists():
        return None
    with warehouse.reader(home) as conn:
        catalog = load_catalog(conn)
        if catalog is None:
            return None
        parsed = parse_question(question, catalog, wall_today)
        draft = Draft(home)
        if parsed.intent == "unknown":
            # "How many refunds last week?" asks the data for a number it does not hold; other
            # questions ("what changed in release 4.2?") are for the corpus.
            quantity = re.match(r"\s*how\s+(many|much)\b", question, re.I)
            if parsed.unknown_measure and (quantity or parsed.period is not None):
                draft.say(_no_measure(parsed.unknown_measure))
                return draft, parsed
            return None
        try:
            _answer(conn, parsed, catalog, draft, home, quotable)
        except duckdb.CatalogException:
            # A mart this question needs was not built yet (a warehouse from before it).
            draft = Draft(home)
            draft.say(
                "The table this question needs is not in the warehouse yet; run "
                "`eventpulse run` to build every mart, then ask again."
            )
        return draft, parsed


def cannot_answer(home: Path, question: str, wall_today: dt.date | None = None) -> str | None:
    """A sentence for a quantity the marts do not have ("how many refunds ..."), else None."""
    from pipelines import warehouse

    if not warehouse.published_path(home).exists():
        return None
    with warehouse.reader(home) as conn:
        catalog = load_catalog(conn)
    if catalog is None:
        return None
    parsed = parse_question(question, catalog, wall_today)
    return _no_measure(parsed.unknown_measure) if parsed.unknown_measure else None


def _no_measure(measure: str) -> str:
    return (
        f'The warehouse has no measure for "{measure}", so the data cannot answer this; '
        "`eventpulse ask` knows active users, new users, sessions, events, purchasers, revenue, "
        "conversion rate, funnel conversion, retention and anomalies."
    )


def _answer(
    conn: duckdb.DuckDBPyConnection,
    question: Question,
    catalog: Catalog,
    draft: Draft,
    home: Path,
    quotable: re.Pattern[str],
) -> None:
    if question.missing_dimension and question.intent not in ("why", "happened"):
        draft.say(
            f"The warehouse has no {question.missing_dimension} breakdown, so this cannot be "
            f"answered by {question.missing_dimension}; its dimensions are "
            f"{', '.join(catalog.segments) or 'none'} (`dimensions` in eventpulse.yaml adds more)."
        )
        return
    if question.missing_segment:
        draft.say(missing_segment_sentence(question, catalog))
        return
    outside = outside_data(question, catalog)
    if outside:
        draft.say(outside)
        return
    if question.period is not None:
        question = _replace_period(question, clipped(question.period, catalog))
    if question.intent in ("why", "happened"):
        answer_happened(conn, question, catalog, draft, home / "docs", quotable)
    elif question.intent == "funnel":
        answer_funnel(conn, question, draft)
    elif question.intent == "funnel_time":
        answer_funnel_time(conn, question, draft)
    elif question.intent == "retention":
        answer_retention(conn, question, draft)
    elif question.intent == "best_day":
        if question.period is None:
            question = _replace_period(question, _whole(catalog))
        answer_best_day(conn, question, draft)
    elif question.intent in ("rank", "breakdown"):
        if question.period is None:
            question = _replace_period(question, _whole(catalog))
        answer_by_segment(conn, question, draft)
    else:
        if question.period is None:
            last = catalog.last_day
            question = _replace_period(
                question, Period(last, last, f"the last day with data ({last.isoformat()})", "day")
            )
        answer_value(conn, question, draft)


def _whole(catalog: Catalog) -> Period:
    first, last = catalog.first_day, catalog.last_day
    return Period(first, last, f"all data ({first.isoformat()} to {last.isoformat()})", "range")


def _replace_period(question: Question, period: Period) -> Question:
    from dataclasses import replace

    return replace(question, period=period)
