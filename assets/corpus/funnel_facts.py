"""Funnel answers: conversion between two named steps (or from the first to the last), over the
whole history from `funnel_steps` (by segment), or by entry day from `funnel_daily` when the
question names a period. Cited by the rows read."""

from __future__ import annotations

import duckdb

from assets.corpus.facts import Draft, columns, fmt, segment_words
from assets.corpus.questions import Question
from pipelines.formatting import duration


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


def answer_funnel_time(conn: duckdb.DuckDBPyConnection, question: Question, draft: Draft) -> None:
    """The median and average time of each step from the one before it, between the steps the
    question names (funnel_steps, whole history; the counted attempts of CONTRACT §3)."""
    funnel = question.funnel
    assert funnel is not None
    dimension, segment = question.segment or ("all", "all")
    rows = conn.execute(
        "select step_index, step, median_seconds_from_previous, avg_seconds_from_previous "
        "from funnel_steps where funnel = $f and dimension = $d and segment = $s "
        "order by step_index",
        {"f": funnel, "d": dimension, "s": segment},
    ).fetchall()
    if not rows:
        draft.say(f"The {funnel} funnel has no rows{segment_words(question.segment)}.")
        return
    first, last = _step_pair(question.steps, len(rows))
    first = min(first, last - 1) if last > 1 else first
    ref = draft.cite(
        f"funnel_steps[funnel={funnel}, dimension={dimension}, segment={segment}, "
        f"step_index={first + 1}..{last}]",
        "table",
        f"funnel_steps, {funnel} step times{segment_words(question.segment)}",
    )
    names = {index: name for index, name, _, _ in rows}
    parts = [
        f"{names[index - 1]} to {name}: median {duration(median)}, average {duration(average)}"
        for index, name, median, average in rows
        if first < index <= last
    ]
    where = segment_words(question.segment)
    draft.say(
        f"In the {funnel} funnel{where}, the time from each step to the next over the whole "
        f"history: {'; '.join(parts)} {ref}."
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
    complete = "is_complete" in columns(conn, "funnel_daily")
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
