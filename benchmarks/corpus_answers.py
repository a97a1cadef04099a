"""Does `ask` still find what users ask about? Retrieval checks on one or more homes' corpora.

    python -m benchmarks.corpus_answers HOME [HOME ...]

For each home (a copy of a `benchmarks/daily_run_bench.py` history: its corpus as the code
that built it left it, or after `eventpulse corpus` with this code):
- the relevance check of `benchmarks/ask_bench.py`: the best sentence's cosine for questions
  the demo corpus answers and for questions it does not, against the answer's threshold;
- questions about a day: for 15 days drawn with a fixed seed from the history, five phrasings
  each; how often that day's daily report is among the 5 results, and first.
Prints one JSON object per home. Used for the README's "The corpus in a long run".
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

from benchmarks.ask_bench import relevance

DAY_QUESTIONS = (
    "what happened on {day}?",
    "android conversion on {day}",
    "checkout funnel signups on {day}",
    "anomalies flagged on {day}",
    "revenue on {day} compared with expected band",
)
DAYS = 15
SEED = 3


def main(argv: list[str]) -> None:
    for home in argv:
        print(json.dumps(check(Path(home))), flush=True)


def check(home: Path) -> dict:
    rel = relevance(home)
    keys = ("threshold", "answered_min", "unanswered_max", "answered_kept", "unanswered_refused")
    return {
        "home": str(home),
        "relevance": {key: rel[key] for key in keys},
        "day_questions": day_questions(home),
    }


def day_questions(home: Path) -> dict[str, dict[str, int]]:
    """Per phrasing: in how many of the drawn days the day's report is in the top 5, and first."""
    from assets.corpus.retrieval import search

    reports = sorted((home / "reports" / "daily").glob("*.md"))
    # Not the first weeks (no anomaly history yet) nor the newest report (kept whole).
    candidates = [dt.date.fromisoformat(p.stem) for p in reports[20:-5]]
    days = sorted(random.Random(SEED).sample(candidates, min(DAYS, len(candidates))))
    found: dict[str, dict[str, int]] = {}
    for question in DAY_QUESTIONS:
        in_top5 = first = 0
        for day in days:
            ids = [r.doc_id for r in search(home, question.format(day=day.isoformat()), 5)]
            wanted = f"report:daily:{day.isoformat()}"
            in_top5 += wanted in ids
            first += bool(ids) and ids[0] == wanted
        found[question] = {"days": len(days), "in_top5": in_top5, "first": first}
    return found


if __name__ == "__main__":
    main(sys.argv[1:])
