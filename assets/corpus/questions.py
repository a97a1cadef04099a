"""What a question asks, read with small tables of words rather than a language model.

A question is parsed against a `Catalog` of what the warehouse holds (segments of each dimension,
funnels and their steps, the first and last day with data), so segment values come from the data
and a named segment that is not there is caught instead of silently dropped. The tables below are
the whole vocabulary; the README lists it. Nothing here reads the warehouse or loads a model.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from assets.corpus.periods import Period, find_period

# Daily metrics (CONTRACT §3 daily_metrics) and the words that name them, longest first within
# each metric; the first metric whose word appears wins, so specific metrics come first.
METRIC_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("conversion_rate", ("conversion rate", "conversion", "converted", "convert", "cvr")),
    (
        "new_users",
        (
            "new users",
            "new user",
            "new visitors",
            "new customers",
            "first-time users",
            "signed up",
            "sign-ups",
            "signups",
            "sign ups",
            "registrations",
        ),
    ),
    ("purchasers", ("purchasers", "purchaser", "buyers", "buyer", "paying users", "purchases")),
    ("revenue", ("revenue", "sales", "income", "gmv", "turnover", "earnings")),
    ("sessions", ("sessions", "session", "visits")),
    ("events", ("events", "event count")),
    ("active_users", ("active users", "active user", "actives", "dau", "users", "visitors")),
    ("purchasers", ("orders", "purchase", "bought", "buy")),
)
METRIC_LABELS = {
    "active_users": "active users",
    "new_users": "new users",
    "sessions": "sessions",
    "events": "events",
    "purchasers": "purchasers",
    "revenue": "revenue",
    "conversion_rate": "conversion rate",
}
# Other words for segment values, used only when that value is a segment in the data.
SEGMENT_SYNONYMS = {
    "iphone": "ios",
    "ipad": "ios",
    "website": "web",
    "browser": "web",
    "desktop": "web",
    "e-mail": "email",
    "newsletter": "email",
    "paid": "ads",
    "advertising": "ads",
    "referrals": "referral",
    "seo": "organic",
}
# Words for each dimension, for "by channel" and "which platform".
DIMENSION_WORDS = {
    "platform": ("platforms", "platform", "devices", "device", "os"),
    "channel": ("channels", "channel", "sources", "source", "acquisition"),
    "campaign": ("campaigns", "campaign"),
    "country": ("countries", "country"),
}
# Values teams commonly have as platforms or channels: named in a question but absent from the
# data, they are a segment that does not exist (said so), not a word to ignore.
COMMON_SEGMENT_VALUES = frozenset(
    "windows macos mac linux chromeos tablet mobile tv watch kiosk blackberry huawei facebook "
    "google bing twitter tiktok instagram linkedin youtube reddit pinterest snapchat affiliate "
    "affiliates partner partners direct social sms push display podcast tv print radio".split()
)
_NAMED_SEGMENT = re.compile(
    r"\b(?:on|for|from|via|through|in)\s+(?:the\s+)?([a-z][\w-]*)\s+"
    r"(platform|channel|app|segment)\b"
    r"|\b(platform|channel|segment)\s+(?:is\s+|=\s*|['\"])['\"]?([a-z][\w-]*)",
    re.I,
)
_HIGH = r"most|highest|largest|biggest|best|top|greatest|more|max(?:imum)?"
_LOW = r"least|lowest|fewest|smallest|worst|less|min(?:imum)?"
_RANK = re.compile(
    rf"\b(which|what|top|best|worst)\b.*\b({_HIGH}|{_LOW})\b|\b(best|worst|top)\b", re.I
)
_LOW_WORD = re.compile(rf"\b({_LOW})\b", re.I)
_BREAKDOWN = re.compile(r"\b(by|per|each|every|across|breakdown|split|compare)\b", re.I)
_WHY = re.compile(r"\b(why|cause[ds]?|reason|explain)\b", re.I)
_HAPPENED = re.compile(
    r"\bwhat\s+(?:happened|went\s+wrong|was\s+(?:going\s+on|unusual|wrong))"
    r"|\b(anomal\w*|incidents?|outages?|unusual|spikes?|dips?|crash\w*)\b",
    re.I,
)
_RETENTION = re.compile(
    r"\b(retention|retain\w*|retained|come\s+back|came\s+back|returning|churn\w*|ltv|lifetime)\b",
    re.I,
)
_RETENTION_PERIOD = re.compile(
    r"\b(day|week|month)[\s-]?(\d{1,2})\b|\b(\d{1,2})(?:st|nd|rd|th)?[\s-](day|week|month)\b", re.I
)
_FUNNEL = re.compile(r"\bfunnels?\b", re.I)
_REACHED = re.compile(r"\b(reach\w*|got\s+to|made\s+it\s+to|drop[\s-]?off|step)\b", re.I)
_TIMING = re.compile(r"\b(how\s+long|time|median|average|avg|seconds|minutes|hours|days)\b", re.I)
_DOCUMENTS = re.compile(
    r"\b(says?|said|mention\w*|according\s+to|changelog|release\s+notes?|notes|docs?|"
    r"documents?|documentation|wiki|glossary)\b",
    re.I,
)
_WHICH_DAY = re.compile(
    r"\b(?:which|what)\s+(?:day|date)\b|\b(?:busiest|quietest|best|worst|peak|record)\s+day\b",
    re.I,
)
_DEFINITION = re.compile(
    r"\b(what\s+(?:is|does|are)\s+(?:a|an|the\s+meaning|meant)\b|define|definition|meaning|"
    r"how\s+(?:is|are)\s+[\w\s]+\s+(?:computed|calculated|defined|measured|counted))",
    re.I,
)
_QUANTITY = re.compile(
    r"\b(?:how\s+(?:many|much)|what\s+(?:was|were|is|are)\s+(?:the\s+)?(?:total\s+)?)"
    r"\s*([a-z][a-z -]{2,40}?)\s*(?:\bon\b|\bin\b|\bfor\b|\bduring\b|\blast\b|\bthis\b|"
    r"\byesterday\b|\btoday\b|\bover\b|\bby\b|\?|$)",
    re.I,
)
_FILLER = frozenset(
    "the a an our my of total number daily average per were was there did do we have had get got "
    "is are".split()
)


@dataclass(frozen=True)
class Catalog:
    """What the warehouse holds, for reading questions against it."""

    first_day: dt.date
    last_day: dt.date
    segments: dict[str, tuple[str, ...]]  # dimension -> segment values (not 'all')
    funnels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> step names


@dataclass(frozen=True)
class Question:
    text: str
    intent: (
        str  # value | breakdown | rank | best_day | funnel | retention | happened | why | unknown
    )
    metric: str | None = None
    dimension: str | None = None  # the dimension a breakdown or ranking is over
    segment: tuple[str, str] | None = None  # (dimension, segment) the question is about
    missing_segment: str | None = None  # a segment named but absent from the data
    missing_dimension: str | None = None  # a breakdown named but not configured
    period: Period | None = None
    lowest: bool = False  # a ranking asks for the least, not the most
    funnel: str | None = None
    steps: tuple[int, ...] = ()  # 1-based funnel step indexes named, in question order
    # Granularity and period N of each retention figure asked for; "retention" alone asks
    # for week 1 and week 4 (the horizons the reports and the README's queries use).
    retention: tuple[tuple[str, int], ...] = (("week", 1), ("week", 4))
    unknown_measure: str | None = None  # "how many X" where X is nothing eventpulse counts


def parse_question(text: str, catalog: Catalog, wall_today: dt.date | None = None) -> Question:
    """Read one question; `intent` is "unknown" when it is not about the marts' numbers."""
    lowered = " ".join(text.lower().split())
    period = find_period(text, catalog.first_day, catalog.last_day, wall_today)
    segment, missing = _segment(lowered, catalog)
    dimension = _dimension(lowered, catalog)
    funnel, steps = _funnel(lowered, catalog)
    metric = _metric(lowered, exclude=_step_words(catalog) if funnel else ())
    common = dict(
        text=text,
        period=period,
        segment=segment,
        missing_segment=missing,
        missing_dimension=_missing_dimension(lowered, catalog),
    )
    if _DOCUMENTS.search(lowered):
        # "What do the release notes say about purchases?": a question about the documents.
        return Question(intent="unknown", metric=metric, **common)
    if _DEFINITION.search(lowered) and period is None and segment is None:
        # "How is retention measured?", "What is a session?": the glossary's, not a number.
        return Question(intent="unknown", metric=metric, **common)
    if _WHY.search(lowered) or _HAPPENED.search(lowered):
        intent = "why" if _WHY.search(lowered) else "happened"
        return Question(intent=intent, metric=metric, dimension=dimension, **common)
    if _RETENTION.search(lowered):
        ranked = dimension is not None and segment is None
        return Question(
            intent="retention",
            metric=None,
            dimension=dimension if ranked else None,
            lowest=bool(_LOW_WORD.search(lowered)),
            retention=_retention_period(lowered),
            **common,
        )
    if funnel:
        return Question(
            intent="funnel_time" if _TIMING.search(lowered) else "funnel",
            funnel=funnel,
            steps=steps,
            dimension=dimension,
            **common,
        )
    if _WHICH_DAY.search(lowered):
        return Question(
            intent="best_day",
            metric=metric or "active_users",  # "the busiest day": the most active users
            lowest=bool(_LOW_WORD.search(lowered)) or "quietest" in lowered,
            **common,
        )
    if metric is None:
        return Question(intent="unknown", unknown_measure=_unknown_measure(lowered), **common)
    compared = _compared_dimension(lowered, catalog)
    if compared is not None and not funnel:  # "ios vs android": every segment of platform
        dimension, segment = compared, None
        common["segment"] = None
    if dimension is not None and segment is None:
        intent = "rank" if _RANK.search(lowered) else "breakdown"
        if intent == "breakdown" and not _BREAKDOWN.search(lowered):
            intent = "rank" if re.search(r"\b(which|what)\b", lowered) else "breakdown"
        return Question(
            intent=intent,
            metric=metric,
            dimension=dimension,
            lowest=bool(_LOW_WORD.search(lowered)),
            **common,
        )
    return Question(intent="value", metric=metric, **common)


def _words(word: str) -> str:
    return r"(?<![\w-])" + re.escape(word) + r"(?![\w-])"


def _metric(lowered: str, exclude: tuple[str, ...] = ()) -> str | None:
    for metric, words in METRIC_WORDS:
        for word in words:
            if word not in exclude and re.search(_words(word), lowered):
                return metric
    return None


def _compared_dimension(lowered: str, catalog: Catalog) -> str | None:
    """The dimension of which the question names two or more segments."""
    for dimension, values in catalog.segments.items():
        named = [
            value
            for value in values
            if value not in ("unknown", "other") and re.search(_words(value.lower()), lowered)
        ]
        if len(named) >= 2:
            return dimension
    return None


def _segment(lowered: str, catalog: Catalog) -> tuple[tuple[str, str] | None, str | None]:
    """The (dimension, segment) named, from the data's values and their synonyms; or the name
    of a segment that the data does not have."""
    for dimension, values in catalog.segments.items():
        for value in sorted(values, key=len, reverse=True):
            if value not in ("unknown", "other") and re.search(_words(value.lower()), lowered):
                return (dimension, value), None
    for word, value in SEGMENT_SYNONYMS.items():
        if re.search(_words(word), lowered):
            for dimension, values in catalog.segments.items():
                if value in values:
                    return (dimension, value), None
    match = _NAMED_SEGMENT.search(lowered)
    if match:
        named = match.group(1) or match.group(4)
        if named and named not in _FILLER and named not in _known_words(catalog):
            return None, named
    for word in COMMON_SEGMENT_VALUES:
        if re.search(_words(word), lowered):
            return None, word
    return None, None


def _known_words(catalog: Catalog) -> set[str]:
    words = {w for ws in DIMENSION_WORDS.values() for w in ws} | {
        w for dimension in catalog.segments for w in _dimension_words(dimension)
    }
    return words | {"this", "that", "which", "what", "all", "each", "every", "mobile-app"}


def _dimension(lowered: str, catalog: Catalog) -> str | None:
    for dimension in catalog.segments:
        if any(re.search(_words(word), lowered) for word in _dimension_words(dimension)):
            return dimension
    return None


def _dimension_words(dimension: str) -> tuple[str, ...]:
    """Words that name a dimension: its own words, its name, and for a `properties.<key>`
    dimension the key as written and with spaces ("by app version" for app_version)."""
    key = dimension.lower().removeprefix("properties.")
    return DIMENSION_WORDS.get(dimension, ()) + tuple(
        dict.fromkeys((dimension.lower(), key, key.replace("_", " ")))
    )


def _funnel(lowered: str, catalog: Catalog) -> tuple[str | None, tuple[int, ...]]:
    """The funnel a question is about: named, or the only one when the word "funnel" is used;
    and the steps it names (by their event names), in the order they appear."""
    named = [name for name in catalog.funnels if re.search(_words(name.lower()), lowered)]
    if named:
        funnel = named[0]
    elif _FUNNEL.search(lowered) and catalog.funnels:
        funnel = next(iter(catalog.funnels))
    else:
        # "from signup to purchase": two steps of one funnel name it too, and so does one
        # step with "reached" ("how many users reached add_to_cart").
        for name in catalog.funnels:
            named_steps = _steps_named(lowered, catalog.funnels[name])
            if len(named_steps) >= 2 or (named_steps and _REACHED.search(lowered)):
                return name, named_steps
        return None, ()
    return funnel, _steps_named(lowered, catalog.funnels[funnel])


def _steps_named(lowered: str, steps: tuple[str, ...]) -> tuple[int, ...]:
    found = []
    for index, step in enumerate(steps, start=1):
        event = step.split("[", 1)[0].lower()
        for form in {event, event.replace("_", " "), event.replace("_", "-")}:
            match = re.search(_words(form), lowered)
            if match:
                found.append((match.start(), index))
                break
    return tuple(index for _, index in sorted(found))


def _step_words(catalog: Catalog) -> tuple[str, ...]:
    events = {step.split("[", 1)[0].lower() for steps in catalog.funnels.values() for step in steps}
    return tuple(events | {event.replace("_", " ") for event in events})


def _retention_period(lowered: str) -> tuple[tuple[str, int], ...]:
    match = _RETENTION_PERIOD.search(lowered)
    if match:
        if match.group(1):
            return ((match.group(1).lower(), int(match.group(2))),)
        return ((match.group(4).lower(), int(match.group(3))),)
    for grain in ("day", "month"):
        if re.search(rf"\b{grain}(ly)?\b", lowered):
            return ((grain, 1),)
    return (("week", 1), ("week", 4))


def _unknown_measure(lowered: str) -> str | None:
    match = _QUANTITY.search(lowered)
    if not match:
        return None
    words = [word for word in match.group(1).split() if word not in _FILLER]
    return " ".join(words) or None


def _missing_dimension(lowered: str, catalog: Catalog) -> str | None:
    """A breakdown the question names ("by country") that the warehouse is not built with."""
    for dimension, words in DIMENSION_WORDS.items():
        if dimension not in catalog.segments and any(
            re.search(_words(word), lowered) for word in words
        ):
            return dimension
    return None
