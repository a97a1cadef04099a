"""Retention answers: week-N (day-N, month-N) retention over every cohort whose period N is
complete (CONTRACT §3 `is_complete`, so a period still running never reads as a drop), from
`retention`; by acquisition segment from `cohorts`. Over several cohorts the rate is their
retained users over their cohort users. Cited by the rows read."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb

from assets.corpus.facts import Draft, columns, fmt, upper_first
from assets.corpus.periods import Period
from assets.corpus.questions import Question


def answer_retention(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    for grain, number in question.retention:
        _retention_at(conn, _cohort_of_day(question, grain), draft, grain, number)


def _cohort_of_day(question: Question, grain: str) -> Question:
    """ "The cohort of 2026-03-11" means the week (or month) cohort that day belongs to."""
    period = question.period
    if period is None or period.grain != "day" or grain == "day":
        return question
    day = period.start
    start = day - dt.timedelta(days=day.weekday()) if grain == "week" else day.replace(day=1)
    return replace(question, period=Period(start, start, f"the {grain} cohort of {start}", "day"))


def _retention_at(
    conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft, grain: str, number: int
) -> None:
    period_label = f"{grain}-{number} retention"
    if question.dimension or question.segment:
        _retention_by_segment(conn, question, draft, grain, number, period_label)
        return
    present = columns(conn, "retention")
    where = "granularity = $g and mode = 'exact' and period = $n"
    if "definition" in present:
        where += " and definition = 'any'"
    complete, cohort_filter = _complete_and_cohorts(present, grain, number, question.period)
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
        f"{upper_first(period_label)} was {fmt('retention_rate', retained / users)}: "
        f"{int(retained):,} of {int(users):,} users of "
        f"{_cohorts_words(cohorts, grain, first, last)} with a complete {grain} {number} came "
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
    present: set[str], grain: str, number: int, period: Period | None
) -> tuple[str, str]:
    """The SQL that keeps complete periods only, and the cohorts of a named period."""
    if "is_complete" in present:
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
    present = columns(conn, "cohorts")
    complete, cohort_filter = _complete_and_cohorts(present, grain, number, question.period)
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
            f"{upper_first(period_label)} of users acquired through {dimension} {segment} was "
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


def _cohorts_words(count: int, grain: str, first: dt.date, last: dt.date) -> str:
    if count == 1:
        return f"the {grain} cohort of {first.isoformat()}"
    return f"the {count} {grain} cohorts from {first.isoformat()} to {last.isoformat()}"
