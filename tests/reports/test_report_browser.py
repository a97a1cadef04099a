"""The daily report in a real browser (issue 16 acceptance): the report of a day with an
incident and of a Monday, built from demo data through the real ingest, marts and anomaly code,
screenshotted in headless Chromium (Debian's, never a downloaded one). Each page stays under
~6,000 px, and no period that had not ended by the report's day is drawn as a value.

Screenshots are kept under the test's tmp dir (`.../screens/`); the README shows two of them
(docs/screenshots/)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assets.reports.build import build_daily_report
from pipelines import warehouse
from pipelines.demo.warehouse import build_demo_warehouse
from pipelines.settings import load_settings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
MAX_HEIGHT = 6000
END = dt.date(2026, 6, 30)  # a fixed calendar: same data on any day the test runs


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        )
    home = tmp_path_factory.mktemp("browser") / "home"
    build_demo_warehouse(home, load_settings(home=home), days=63, users=900, seed=7, end=END)
    return home


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


def _incident_day(home: Path) -> dt.date:
    """The last injected anomaly day that the detector flagged."""
    labelled = sorted(
        {
            dt.date.fromisoformat(label["date"])
            for label in json.loads((home / "demo_labels.json").read_text())
        }
    )
    with warehouse.reader(home) as conn:
        flagged = {
            d
            for (d,) in conn.execute(
                "select distinct metric_date from anomalies where is_anomaly"
            ).fetchall()
        }
    days = [d for d in labelled if d in flagged]
    assert days, "no injected anomaly was flagged"
    return days[-1]


def _last_monday(home: Path) -> dt.date:
    with warehouse.reader(home) as conn:
        (last,) = conn.execute("select max(metric_date) from daily_metrics").fetchone()
    return last - dt.timedelta(days=last.weekday())


def _screenshot(browser: Any, home: Path, day: dt.date, shots: Path) -> tuple[int, Any, Any]:
    settings = load_settings(home=home)
    with warehouse.reader(home) as conn:
        paths = build_daily_report(conn, settings, day)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(paths.html.as_uri())
    page.wait_for_load_state("load")
    height = page.evaluate("document.documentElement.scrollHeight")
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"daily-{day.isoformat()}.png"), full_page=True)
    return height, page, paths


def _cohort_cells(page: Any) -> list[tuple[dt.date, int, str]]:
    """(cohort start, week index, cell text) of the week-cohort table in the page."""
    rows = page.eval_on_selector_all(
        "#cohorts table.numbers tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )
    header, *body = rows
    cells = []
    for row in body:
        start = dt.date.fromisoformat(row[0])
        for column, text in zip(header[2:], row[2:], strict=True):
            cells.append((start, int(column.removeprefix("W")), text))
    return cells


@pytest.mark.parametrize("which", ["incident", "monday"])
def test_daily_report_is_short_and_draws_no_partial_period(
    demo_home: Path, browser: Any, tmp_path_factory: pytest.TempPathFactory, which: str
) -> None:
    day = _incident_day(demo_home) if which == "incident" else _last_monday(demo_home)
    shots = tmp_path_factory.getbasetemp() / "screens"
    height, page, paths = _screenshot(browser, demo_home, day, shots)
    try:
        assert height < MAX_HEIGHT, f"{which} report of {day} is {height} px tall"
        assert (shots / f"daily-{day.isoformat()}.png").stat().st_size > 10_000
        # Week cohorts: a week that has not ended by the report's day is never a value.
        cells = _cohort_cells(page)
        assert cells
        for start, week, text in cells:
            ended = start + dt.timedelta(days=7 * (week + 1)) <= day + dt.timedelta(days=1)
            if not ended:
                assert text in ("running", "—"), (start, week, text)
            elif text != "—":
                assert re.fullmatch(r"\d+\.\d\d%", text), (start, week, text)
        assert any(text == "running" for *_, text in cells)  # the current week, at least
        # Retention curves: only periods that ended (the last day period is the day itself).
        day_rows = page.eval_on_selector_all(
            "#retention figure:first-of-type table.numbers tbody tr",
            "rows => rows.map(r => r.cells[0].textContent.trim())",
        )
        assert day_rows and int(day_rows[-1]) <= 30
        # The day's funnel entries are still within their window: said, and drawn hatched.
        assert "to finish" in page.inner_text("#funnels")
        if which == "incident":
            assert page.inner_text("#anomalies").strip()
    finally:
        page.close()
