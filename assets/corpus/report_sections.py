"""What a daily report gives the corpus: what that report alone says.

A daily report repeats most of what the reports before it said. Its six-week trend table holds
42 days, and 41 of those rows were already in earlier reports (each day's row is also in that
day's own report); its retention and week-cohort sections describe the whole history as of its
day, and the next report describes it again with one day more. Indexed whole, a year of
reports made 13,087 chunks, 7,091 of them slices of trend tables: a backfill spent about 20
minutes embedding them, a daily refresh embedded ~38 chunks for one report, and a search for
one day's numbers found them in 42 reports.

So a daily report gives its own day:
- every section, but a table of days (first header cell `Day`, rows starting with an ISO date)
  keeps only the row of the report's own day;
- the sections that describe the whole history as of the report's day (`HISTORY_SECTIONS`)
  only in the newest daily report. Older versions are superseded by it; the cohort documents
  built from the warehouse and the answers from the marts (retention, cohorts) cover every
  period;
- the report template's explanations (`TEMPLATE_NOTES`: how the headline, the segments and the
  funnel bars are computed), the same in every report but for its date, only in the oldest
  daily report: a year of reports repeated them 357 times, ~64k of the corpus's ~550k word
  pieces, all embedded in a backfill. The oldest report stays the same when days are added, so
  a day's refresh embeds no older report again. What a note says of the day alone (a funnel
  window still open) stays. So do the report's opening line and the trend section's note, each
  its section's only paragraph: without the trend notes' chunks an off-topic question ("What
  will the weather be in Paris tomorrow?") passed the answer's relevance threshold on the
  360-day history (0.27 against 0.26, benchmarks.corpus_answers), and without the opening
  lines too it rose to 0.28.
Weekly reports (one a week) are indexed whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable

from assets.corpus.documents import MARKDOWN_HEADING, Document

# `## ` sections of a daily report whose tables describe every cohort up to the report's day.
HISTORY_SECTIONS = frozenset({"Retention", "Week cohorts"})

_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_LINE = re.compile(r"^\s*\|")
_FIRST_CELL = re.compile(r"^\s*\|\s*([^|]*?)\s*\|")
_ISO_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})\b")
# Whole lines of the daily report template (assets/reports/) that explain how it is computed;
# tests/corpus/test_report_sections.py checks each still matches a freshly rendered report.
TEMPLATE_NOTES = (
    re.compile(r"All users, all platforms and channels \(daily_metrics, dimension 'all'\); "),
    re.compile(r"Each platform and channel on \d{4}-\d{2}-\d{2} \(daily_metrics; "),
    re.compile(r"Bars: users whose counted attempt entered the funnel "),
)


def own_day_reports(documents: Iterable[Document]) -> list[Document]:
    """`documents` with each daily report's body reduced to what that report alone says."""
    documents = list(documents)
    days = [d.date for d in documents if _is_daily_report(d) and d.date]
    newest, oldest = max(days, default=None), min(days, default=None)
    return [
        dataclasses.replace(
            d,
            body=daily_report_body(d.body, d.date, d.date == newest, notes=d.date == oldest),
        )
        if _is_daily_report(d) and d.date
        else d
        for d in documents
    ]


def _is_daily_report(document: Document) -> bool:
    return document.kind == "report" and document.doc_id.startswith("report:daily:")


def daily_report_body(markdown: str, day: dt.date, newest: bool, notes: bool = True) -> str:
    """The report's Markdown without what other reports already hold (see the module doc);
    `notes`: keep the template's explanations (the oldest report does)."""
    kept: list[str] = []
    in_fence = in_history = in_table = table_of_days = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else MARKDOWN_HEADING.match(line)
        if heading and len(heading.group(1)) <= 2:
            in_history = len(heading.group(1)) == 2 and heading.group(2) in HISTORY_SECTIONS
        if in_history and not newest:
            continue
        if not notes and not in_fence and _is_template_note(line):
            continue
        is_table_line = not in_fence and bool(_TABLE_LINE.match(line))
        if is_table_line and not in_table:
            table_of_days = _first_cell(line) == "Day"  # the header row
        elif is_table_line and table_of_days and not _is_row_of(line, day):
            continue
        in_table = is_table_line
        kept.append(line)
    return "\n".join(kept) + ("\n" if markdown.endswith("\n") else "")


def _is_template_note(line: str) -> bool:
    return any(note.match(line) for note in TEMPLATE_NOTES)


def _first_cell(line: str) -> str:
    match = _FIRST_CELL.match(line)
    return match.group(1) if match else ""


def _is_row_of(line: str, day: dt.date) -> bool:
    """A row dated another day is dropped; the separator row and undated rows are kept."""
    match = _ISO_DAY.match(_first_cell(line))
    return match is None or match.group(1) == day.isoformat()
