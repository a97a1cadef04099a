"""The period a question names: a day, a week, a month or a range, absolute or relative.

Relative words are resolved against the data, not the wall clock alone: "today" is the day after
the last day with data (the daily schedule loads yesterday's events, so the data normally ends
yesterday), or the wall clock's today when the data already reaches it. So "yesterday" is the
last day with data on a warehouse that is up to date, and on one that stopped a week ago it is
still that last day rather than a day without rows. Weeks start on Monday (CONTRACT §3).

A date without a year ("March 20", "in November") takes the latest year that puts it inside the
data, else the year of the last day with data. Every period carries the words that name it in an
answer: "yesterday (2026-04-05)", "last week (2026-03-30 to 2026-04-05)".
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_MONTH_NAMES = (
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("may",),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sep", "sept"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
)
MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names}
_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_ISO_DAY = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_RANGE = re.compile(
    rf"\b(?:between|from)\s+{_ISO_DAY}\s+(?:and|to|until|through|-)\s+{_ISO_DAY}\b", re.I
)
_DAY = re.compile(rf"\b{_ISO_DAY}\b")
_ISO_WEEK = re.compile(r"\b(\d{4})-?W(\d{1,2})\b", re.I)
_WEEK_NUMBER = re.compile(
    r"\b(?:week|wk)\s*#?\s*(\d{1,2})\b(?!\s*(?:day|week|month|retention|retain|cohort)|-)", re.I
)
_WEEK_OF = re.compile(rf"\bweek\s+(?:of|starting|beginning)\s+(?:on\s+)?{_ISO_DAY}\b", re.I)
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_ORDINAL}\b{_YEAR}", re.I)
_DAY_MONTH = re.compile(rf"\b{_ORDINAL}\s+(?:of\s+)?{_MONTH}(?![a-z]){_YEAR}", re.I)
_MONTH_ONLY = re.compile(rf"\b(?:in|during|for|of|over)\s+{_MONTH}(?![a-z])(?:\s+(\d{{4}}))?", re.I)
_SLASHED = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b")  # month/day, as US English
_YEAR_MONTH = re.compile(r"\b(\d{4})-(\d{2})\b(?!-)")
_LAST_N = re.compile(r"\b(?:last|past|previous)\s+(\d{1,3})\s+(day|week)s?\b", re.I)
_RELATIVE = re.compile(
    r"\b(today|yesterday|day before yesterday|(?:this|last|past|previous)\s+(?:week|month)"
    r"|week\s+before\s+last|(?:day|week|month)[\s-]over[\s-](?:day|week|month)|wow|mom|dod)\b",
    re.I,
)
# "week over week" asks about the last complete week against the one before it.
_OVER = {"wow": "last week", "mom": "last month", "dod": "yesterday"}


_RELATIVE_WORDS = ("today", "yesterday", "the day before", "this ", "last ", "the last", "the week")


@dataclass(frozen=True)
class Period:
    """Inclusive days; `label` is how an answer names it, `grain` is day, week, month or range."""

    start: dt.date
    end: dt.date
    label: str
    grain: str
    said: str | None = None  # how a sentence says it, when not derived from the label

    @property
    def when(self) -> str:
        """The period as a sentence says it: "on 2026-03-20", "yesterday (2026-04-05)",
        "in week 2026-W12 (...)", "in March 2026", "from 2026-03-01 to 2026-03-09"."""
        if self.said:
            return self.said
        if self.label.startswith("the last"):
            return f"in {self.label}"
        if self.label.startswith("all "):
            return f"over {self.label}"
        if self.label.startswith(_RELATIVE_WORDS):
            return self.label
        if self.grain == "day":
            return f"on {self.label}"
        if self.grain in ("week", "month"):
            return f"in {self.label}"
        return self.label if self.label.startswith("the ") else f"from {self.label}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before (the same grain for a calendar month)."""
        if self.grain == "month":
            end = self.start - dt.timedelta(days=1)
            start = end.replace(day=1)
            return Period(start, end, _month_label(start), "month")
        end = self.start - dt.timedelta(days=1)
        start = end - dt.timedelta(days=self.days - 1)
        if self.grain == "week":
            return _week(start)
        if start == end:
            return _day(start)
        return Period(start, end, _span(start, end), self.grain)


def reference_today(last_data_day: dt.date, wall_today: dt.date | None = None) -> dt.date:
    """The day "today" means: the day after the last day with data, or the wall clock's today
    when the data already reaches it."""
    wall_today = wall_today or dt.date.today()
    return min(wall_today, last_data_day + dt.timedelta(days=1))


def find_period(
    question: str,
    first_data_day: dt.date,
    last_data_day: dt.date,
    wall_today: dt.date | None = None,
) -> Period | None:
    """The period the question names, or None when it names none."""
    today = reference_today(last_data_day, wall_today)
    for finder in (_range, _week_of, _iso_day, _iso_week, _named_day, _relative, _last_n):
        period = finder(question, today)
        if period is not None:
            return period
    return (
        _month(question, first_data_day, last_data_day)
        or _named_day_without_year(question, first_data_day, last_data_day)
        or _slashed_day(question, first_data_day, last_data_day)
        or _week_number(question, first_data_day, last_data_day)
    )


def day_label(day: dt.date) -> str:
    return day.isoformat()


def _span(start: dt.date, end: dt.date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"


def _month_label(start: dt.date) -> str:
    return f"{calendar.month_name[start.month]} {start.year}"


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _day(day: dt.date, words: str | None = None) -> Period:
    return Period(day, day, f"{words} ({day.isoformat()})" if words else day.isoformat(), "day")


def _week(monday: dt.date, words: str | None = None) -> Period:
    sunday = monday + dt.timedelta(days=6)
    year, number, _ = monday.isocalendar()
    name = f"{year}-W{number:02d}"
    label = (
        f"{words} ({_span(monday, sunday)})" if words else f"week {name} ({_span(monday, sunday)})"
    )
    return Period(monday, sunday, label, "week")


def _whole_month(year: int, month: int, words: str | None = None) -> Period:
    start = dt.date(year, month, 1)
    end = dt.date(year, month, calendar.monthrange(year, month)[1])
    label = f"{words} ({_month_label(start)})" if words else _month_label(start)
    return Period(start, end, label, "month")


def _range(question: str, today: dt.date) -> Period | None:
    match = _RANGE.search(question)
    if not match:
        return None
    numbers = [int(group) for group in match.groups()]
    start, end = _safe_date(*numbers[:3]), _safe_date(*numbers[3:])
    if start is None or end is None:
        return None
    start, end = min(start, end), max(start, end)
    return Period(start, end, _span(start, end), "range")


def _week_of(question: str, today: dt.date) -> Period | None:
    match = _WEEK_OF.search(question)
    day = match and _safe_date(*(int(group) for group in match.groups()))
    if not day:
        return None
    return _week(day - dt.timedelta(days=day.weekday()))


def _iso_day(question: str, today: dt.date) -> Period | None:
    match = _DAY.search(question)
    day = match and _safe_date(*(int(group) for group in match.groups()))
    return _day(day) if day else None


def _iso_week(question: str, today: dt.date) -> Period | None:
    match = _ISO_WEEK.search(question)
    if not match:
        return None
    try:
        return _week(dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1))
    except ValueError:
        return None


def _named_day(question: str, today: dt.date) -> Period | None:
    """ "March 20, 2026" / "20th of March 2026": only with a year here (see the fallback)."""
    for pattern, month_group, day_group in ((_MONTH_DAY, 1, 2), (_DAY_MONTH, 2, 1)):
        match = pattern.search(question)
        if match and match.group(3):
            month = MONTHS[match.group(month_group).lower().rstrip(".")]
            day = _safe_date(int(match.group(3)), month, int(match.group(day_group)))
            if day:
                return _day(day)
    return None


def _named_day_without_year(question: str, first: dt.date, last: dt.date) -> Period | None:
    for pattern, month_group, day_group in ((_MONTH_DAY, 1, 2), (_DAY_MONTH, 2, 1)):
        match = pattern.search(question)
        if match:
            month = MONTHS[match.group(month_group).lower().rstrip(".")]
            day_of_month = int(match.group(day_group))
            for year in range(last.year, first.year - 1, -1):
                day = _safe_date(year, month, day_of_month)
                if day and first <= day <= last:
                    return _day(day)
            day = _safe_date(last.year, month, day_of_month)
            if day:
                return _day(day)
    return None


def _month(question: str, first: dt.date, last: dt.date) -> Period | None:
    match = _YEAR_MONTH.search(question)
    if match and 1 <= int(match.group(2)) <= 12:
        return _whole_month(int(match.group(1)), int(match.group(2)))
    match = _MONTH_ONLY.search(question)
    if not match:
        return None
    month = MONTHS[match.group(1).lower().rstrip(".")]
    if match.group(2):
        return _whole_month(int(match.group(2)), month)
    for year in range(last.year, first.year - 1, -1):
        start = dt.date(year, month, 1)
        if start <= last and _whole_month(year, month).end >= first:
            return _whole_month(year, month)
    return _whole_month(last.year, month)


def _relative(question: str, today: dt.date) -> Period | None:
    match = _RELATIVE.search(question)
    if not match:
        return None
    words = " ".join(match.group(1).lower().replace("-", " ").split())
    if " over " in words:
        words = {"day": "yesterday", "week": "last week", "month": "last month"}[words.split()[0]]
    words = _OVER.get(words, words)
    monday = today - dt.timedelta(days=today.weekday())
    if words == "today":
        return _day(today, "today")
    if words == "yesterday":
        return _day(today - dt.timedelta(days=1), "yesterday")
    if words == "day before yesterday":
        return _day(today - dt.timedelta(days=2), "the day before yesterday")
    if words == "this week":
        return _week(monday, "this week")
    if words in ("last week", "past week", "previous week"):
        return _week(monday - dt.timedelta(days=7), "last week")
    if words == "week before last":
        return _week(monday - dt.timedelta(days=14), "the week before last")
    if words == "this month":
        return _whole_month(today.year, today.month, "this month")
    previous = today.replace(day=1) - dt.timedelta(days=1)
    return _whole_month(previous.year, previous.month, "last month")


def _last_n(question: str, today: dt.date) -> Period | None:
    match = _LAST_N.search(question)
    if not match:
        return None
    count = int(match.group(1)) * (7 if match.group(2).lower() == "week" else 1)
    if count < 1:
        return None
    end = today - dt.timedelta(days=1)
    start = end - dt.timedelta(days=count - 1)
    words = f"the last {match.group(1)} {match.group(2).lower()}s"
    return Period(start, end, f"{words} ({_span(start, end)})", "range")


def _week_number(question: str, first: dt.date, last: dt.date) -> Period | None:
    """ "week 13": the ISO week of that number in the latest year that has it inside the data."""
    match = _WEEK_NUMBER.search(question)
    if not match:
        return None
    number = int(match.group(1))
    for year in range(last.year, first.year - 1, -1):
        try:
            monday = dt.date.fromisocalendar(year, number, 1)
        except ValueError:
            continue
        if monday <= last and monday + dt.timedelta(days=6) >= first:
            return _week(monday)
    return None


def _slashed_day(question: str, first: dt.date, last: dt.date) -> Period | None:
    """ "3/20" or "3/20/2026": month first, as US English writes it, unless that cannot be a
    date ("20/3": then day first); without a year, as for "March 20"."""
    match = _SLASHED.search(question)
    if not match:
        return None
    month, day_of_month = int(match.group(1)), int(match.group(2))
    if month > 12:
        month, day_of_month = day_of_month, month
    if match.group(3):
        day = _safe_date(int(match.group(3)), month, day_of_month)
        return _day(day) if day else None
    for year in range(last.year, first.year - 1, -1):
        day = _safe_date(year, month, day_of_month)
        if day and first <= day <= last:
            return _day(day)
    day = _safe_date(last.year, month, day_of_month)
    return _day(day) if day else None
