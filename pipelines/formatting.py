"""How numbers, durations and names are written: one home for every stage's text.

Each medium keeps its own style for now (the UI and the corpus write "12.3%", reports
"12.34%"; prose says "n/a", tables "—"), so the callers pass it. The styles are kept apart on
purpose in this step: corpus chunk ids are hashes of their text, and a changed character
re-embeds every chunk.
"""

from __future__ import annotations

import re
from typing import Literal

from pipelines.settings import DAILY_METRICS

MetricStyle = Literal["prose", "label", "table"]
COUNT_METRICS = frozenset(m.name for m in DAILY_METRICS if m.kind == "count")
MINUS = "\u2212"  # the typographic minus: "−91%" reads better than "-91%"


def percent(value: float | None, digits: int = 1, missing: str = "n/a") -> str:
    """A share as a percentage: 0.1234 -> "12.3%"."""
    return missing if value is None else f"{value * 100:.{digits}f}%"


def duration(
    seconds: float | None, *, minute_digits: int = 1, days: bool = False, missing: str = "–"
) -> str:
    """Seconds as "42 s", "3.5 min", "2.0 h" (and "3.1 d" from two days on, with `days`)."""
    if seconds is None:
        return missing
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.{minute_digits}f} min"
    if not days or seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def metric_value(metric: str, value: float | None, style: MetricStyle, missing: str) -> str:
    """A daily metric's value (CONTRACT §3), conversion_rate as a percentage, revenue in cents.

    - "prose" (corpus): thousands separators, one decimal for a non-whole count;
    - "label" (anomaly explanations and chart labels): thousands separators, counts whole;
    - "table" (reports): plain digits, two decimals for anything not whole.
    """
    if value is None or value != value:  # None or NaN
        return missing
    if metric == "conversion_rate":
        return percent(value, 2 if style == "table" else 1)
    if metric == "revenue":
        return f"{value:.2f}" if style == "table" else f"{value:,.2f}"
    if style == "label":
        return f"{value:,.0f}" if metric in COUNT_METRICS else f"{value:,.4g}"
    if float(value).is_integer():
        return str(int(value)) if style == "table" else f"{value:,.0f}"
    return f"{value:.2f}" if style == "table" else f"{value:,.1f}"


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
NO_CENTS = {"JPY", "KRW"}  # currencies written without minor units


def money(value: float | None, currency: str, missing: str) -> str:
    """Revenue as a person reads it: "$12,345.67", "€1,200.00", "12,345.67 CHF"."""
    if value is None or value != value:
        return missing
    digits = 0 if currency in NO_CENTS else 2
    sign = MINUS if value < 0 else ""
    amount = f"{abs(value):,.{digits}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def signed_percent(relative: float | None) -> str:
    """A relative change: "+12%", "−91%", "×14" from ten times up; "up from 0" without a base."""
    if relative is None or relative != relative:
        return "up from 0"
    if relative >= 9:
        return f"\u00d7{relative + 1:,.0f}"
    return f"{'+' if relative >= 0 else MINUS}{abs(relative):,.0%}"


def file_name(text: str) -> str:
    """`text` as a file-name part: characters outside [A-Za-z0-9._-] become "_"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


def slug(text: str) -> str:
    """A lower-case slug for anchors and figure names: "iOS / Checkout" -> "ios-checkout"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
