"""What a daily report gives the corpus (assets/corpus/report_sections.py): its own day, not
the rows and whole-history sections that other reports already hold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_corpus import CountingEmbedder

from assets.corpus.report_sections import HISTORY_SECTIONS, TEMPLATE_NOTES, daily_report_body
from assets.corpus.store import build_corpus, open_table
from assets.reports.build import build_daily_report
from pipelines import warehouse
from pipelines.demo.warehouse import build_demo_warehouse
from pipelines.settings import Settings

LAST_DAY = dt.date(2026, 4, 6)
REPORT_DAYS = [LAST_DAY - dt.timedelta(days=n) for n in (3, 2, 1)]


REPORT = """# Daily report 2026-03-12 (Thursday)

## Six-week trends

| Day | Active users | Revenue |
| --- | --- | --- |
| 2026-03-10 (Tue) | 900 | $10.00 |
| 2026-03-11 (Wed) | 950 | $11.00 |
| 2026-03-12 (Thu) | 990 | $12.00 |

| Metric | 2026-03-12 | Previous day (2026-03-11) |
| --- | --- | --- |
| Active users | 990 | 950 |

```
| Day | kept inside a code block |
| 2026-03-10 | 1 |
```

## Retention

| Day | Cohorts | Rate |
| --- | --- | --- |
| 0 | 30 | 100.00% |

## Anomalies

No anomalies were flagged on 2026-03-12.
"""


def test_a_table_of_days_keeps_the_reports_own_day_and_other_tables_stay_whole() -> None:
    body = daily_report_body(REPORT, dt.date(2026, 3, 12), newest=True)

    assert "| 2026-03-12 (Thu) | 990 | $12.00 |" in body
    assert "2026-03-10 (Tue)" not in body and "2026-03-11 (Wed)" not in body
    assert "| Day | Active users | Revenue |\n| --- | --- | --- |" in body  # header kept
    assert "| Active users | 990 | 950 |" in body  # not a table of days
    assert "| 2026-03-10 | 1 |" in body  # a code block is not a table
    assert "| 0 | 30 | 100.00% |" in body  # a table of day numbers, not of dates
    assert "No anomalies were flagged on 2026-03-12." in body


def test_whole_history_sections_are_kept_in_the_newest_report_only() -> None:
    newest = daily_report_body(REPORT, dt.date(2026, 3, 12), newest=True)
    older = daily_report_body(REPORT, dt.date(2026, 3, 12), newest=False)

    assert "## Retention" in newest and "100.00%" in newest
    assert "## Retention" not in older and "100.00%" not in older
    assert "## Anomalies" in older  # the sections after it are the day's again
    assert "Retention" in HISTORY_SECTIONS


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo warehouse with real daily reports of three days (the reports stage's own
    rendering, so a renamed section or table shows up here)."""
    home = tmp_path_factory.mktemp("report_sections") / "home"
    settings = Settings(home=home)
    build_demo_warehouse(home, settings, days=35, users=600, seed=7, end=LAST_DAY)
    with warehouse.reader(home) as conn:
        for day in REPORT_DAYS[:2]:
            build_daily_report(conn, settings, day)
    return home


def _report_chunks(home: Path, day: dt.date) -> list[dict]:
    table = open_table(Settings(home=home).lancedb_dir)
    rows = table.search().select(["doc_id", "title", "text"]).limit(None).to_list()
    return [r for r in rows if r["doc_id"] == f"report:daily:{day.isoformat()}"]


def _sections(home: Path, day: dt.date) -> set[str]:
    """The top-level sections of the day's report that the corpus holds chunks of."""
    return {r["title"].split(" › ")[1] for r in _report_chunks(home, day) if " › " in r["title"]}


def test_a_days_refresh_embeds_that_days_report_and_the_newest_history_only(home: Path) -> None:
    settings = Settings(home=home)
    first_day, second_day, new_day = REPORT_DAYS
    build_corpus(settings, embed_fn=CountingEmbedder())

    trend_rows = [r for r in _report_chunks(home, first_day) if "Six-week trends" in r["title"]]
    trend_text = "\n".join(r["text"] for r in trend_rows)
    assert f"| {first_day.isoformat()} (" in trend_text  # the report's own day's row ...
    previous = first_day - dt.timedelta(days=1)
    assert f"| {previous.isoformat()} (" not in trend_text  # ... and no earlier day's row
    for day, newest in ((first_day, False), (second_day, True)):
        sections = _sections(home, day)
        assert {"Headline metrics", "Anomalies"} <= sections
        assert bool(sections & HISTORY_SECTIONS) == newest

    with warehouse.reader(home) as conn:
        build_daily_report(conn, settings, new_day)
    embedder = CountingEmbedder()
    stats = build_corpus(settings, embed_fn=embedder)

    new_chunks = _report_chunks(home, new_day)
    assert stats.added == len(embedder.calls) == len(new_chunks)  # nothing else re-embedded
    assert {r["text"] for r in new_chunks} == set(embedder.calls)
    assert not _sections(home, second_day) & HISTORY_SECTIONS  # no longer the newest
    assert stats.removed > 0  # its history sections went
    assert _sections(home, new_day) >= {"Headline metrics", *HISTORY_SECTIONS}


def test_every_template_note_matches_a_line_of_a_rendered_report(home: Path) -> None:
    """The notes are the reports stage's wording: a reworded note shows up here."""
    report = Settings(home=home).reports_dir / "daily" / f"{REPORT_DAYS[0].isoformat()}.md"
    lines = report.read_text().splitlines()
    for note in TEMPLATE_NOTES:
        assert any(note.match(line) for line in lines), note.pattern


def test_template_notes_are_kept_in_the_oldest_report_only(home: Path) -> None:
    settings = Settings(home=home)
    build_corpus(settings, embed_fn=CountingEmbedder())
    days = sorted(
        dt.date.fromisoformat(p.stem) for p in (settings.reports_dir / "daily").glob("*.md")
    )
    for day in days:
        lines = [line for r in _report_chunks(home, day) for line in r["text"].splitlines()]
        kept = {note.pattern for note in TEMPLATE_NOTES if any(note.match(x) for x in lines)}
        assert kept == ({n.pattern for n in TEMPLATE_NOTES} if day == days[0] else set()), day
        assert {"Headline metrics", "By platform and channel", "Funnels"} <= _sections(home, day)
        assert any(line.startswith("The headline metrics over the 42 days") for line in lines)


def test_a_report_without_its_notes_keeps_what_it_says_of_its_day() -> None:
    report = (
        "# Daily report 2026-03-12 (Thursday)\n\n## Headline metrics\n\n"
        "All users, all platforms and channels (daily_metrics, dimension 'all'); "
        "conversion = purchasers / active users.\n\n"
        "| Metric | 2026-03-12 |\n| --- | --- |\n| Active users | 990 |\n\n"
        "## Funnels\n\n"
        'Funnel "checkout": users who entered on 2026-03-12 have until 2026-03-20 00:00 UTC '
        "to finish (a 7.0 d window), so the later steps are still growing.\n"
    )
    body = daily_report_body(report, dt.date(2026, 3, 12), newest=False, notes=False)
    assert "All users, all platforms" not in body
    assert "| Active users | 990 |" in body
    assert "users who entered on 2026-03-12 have until 2026-03-20" in body
    assert daily_report_body(report, dt.date(2026, 3, 12), newest=False) == report
