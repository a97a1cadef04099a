"""`docs/changelog.md`: routine releases and the incidents behind the injected anomalies, the
product history the RAG corpus later reads to explain them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.demo.plan import Anomaly, Calendar


@dataclass(frozen=True)
class Incident:
    """A changelog entry explaining an injected anomaly."""

    anomaly: Anomaly
    platform: str | None  # the app whose release caused it; {version}/{hotfix} get its numbers
    title: str
    body: str


RELEASE_NAMES = {"web": "Web shop", "ios": "iOS app", "android": "Android app"}
FIRST_VERSIONS = {"web": (3, 14), "ios": (4, 6), "android": (5, 2)}
ROUTINE_RELEASES = (
    ("web", "Faster search suggestions with typo tolerance."),
    ("ios", "Apple Pay in checkout and a smaller download."),
    ("android", "Redesigned order history and offline browsing of recently viewed items."),
    ("web", "Saved carts now sync across devices."),
    ("ios", "Wishlist widget for the home screen."),
    ("android", "Google Pay in checkout."),
    ("web", "New help centre with live chat."),
    ("ios", "Accessibility fixes: larger tap targets, VoiceOver labels."),
    ("android", "Dark mode and battery-saving image loading."),
    ("web", "Product pages load 30% faster (image CDN)."),
)
ROUTINE_OUTCOMES = (
    "Rolled out to everyone; metrics stayed within their usual range.",
    "Gradual rollout over two days; no measurable change in traffic or conversion.",
    "No incidents; conversion unchanged within noise.",
)


def write_changelog(
    path: Path, rng: np.random.Generator, calendar: Calendar, incidents: list[Incident]
) -> None:
    """`docs/changelog.md`: routine releases and the incidents behind the injected anomalies,
    newest first, under dated headings."""
    entries = _routine_entries(rng, calendar, incidents) + [
        (incident.anomaly.days[0], incident.platform, incident) for incident in incidents
    ]
    versions = {platform: list(start) for platform, start in FIRST_VERSIONS.items()}
    sections = []
    for day, platform, content in sorted(entries, key=lambda e: e[0]):
        version = hotfix = ""
        if platform:
            versions[platform][1] += 1
            major, minor = versions[platform]
            version, hotfix = f"{major}.{minor}.0", f"{major}.{minor}.1"
        sections.append(_changelog_section(calendar, day, platform, content, version, hotfix))
    text = "# Product changelog\n\nReleases and incidents of the demo shop, newest first. "
    text += "Dates are UTC.\n\n" + "\n".join(reversed(sections))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _routine_entries(
    rng: np.random.Generator, calendar: Calendar, incidents: list[Incident]
) -> list[tuple[int, str | None, str]]:
    """A routine release every 6–10 days, never on an incident day."""
    busy = {day for incident in incidents for day in incident.anomaly.days}
    entries = []
    day, index = int(rng.integers(1, 5)), 0
    while day < calendar.days:
        if day not in busy:
            platform, note = ROUTINE_RELEASES[index % len(ROUTINE_RELEASES)]
            outcome = ROUTINE_OUTCOMES[int(rng.integers(0, len(ROUTINE_OUTCOMES)))]
            entries.append((day, platform, f"{note} {outcome}"))
            index += 1
        day += int(rng.integers(6, 11))
    return entries


def _changelog_section(
    calendar: Calendar,
    day: int,
    platform: str | None,
    content: Incident | str,
    version: str,
    hotfix: str,
) -> str:
    if isinstance(content, str):
        heading = f"{RELEASE_NAMES[platform or 'web']} {version} release"
        return f"## {calendar.date(day)} — {heading}\n\n{content}\n"
    dates = [calendar.date(d) for d in content.anomaly.days]
    when = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else f"{dates[0]}"
    title = content.title.replace("{version}", version)
    body = content.body.replace("{version}", version).replace("{hotfix}", hotfix)
    if content.anomaly.kind in ("spike", "revenue_spike"):
        return f"## {when} — {title}\n\n{body}\n"
    return f"## {when} — Incident: {title}\n\n{body}\n"
