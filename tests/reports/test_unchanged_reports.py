"""A run writes again only the reports whose inputs changed (assets/reports/unchanged.py): a
kept report is byte for byte the one writing it again would give, and any change to the data,
a setting or a report's files makes it written again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from conftest import insert_events
from test_as_of import FUNNEL, _build, _events

from assets.reports.build import ReportPaths, build_reports
from assets.reports.unchanged import report_inputs, write_changed_reports, writing_reports
from pipelines import warehouse
from pipelines.settings import AlertSettings, Settings

FIRST = dt.date(2026, 2, 2)
DAYS = [dt.date(2026, 2, 10), dt.date(2026, 2, 11), dt.date(2026, 2, 12)]


def _files(reports: list[ReportPaths]) -> dict[str, bytes]:
    return {
        str(path): path.read_bytes()
        for paths in reports
        for path in (paths.markdown, paths.html, *paths.figures)
    }


class Runs:
    """Report writes over one home, as the report asset makes them, noting what each wrote."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.written: list[list[dt.date]] = []

    def write(self, starts: list[dt.date], settings: Settings) -> list[ReportPaths]:
        self.written.append(starts)
        with warehouse.reader(self.home) as conn:
            return list(build_reports(conn, settings, "daily", starts))

    def run(self, settings: Settings) -> tuple[list[ReportPaths], int]:
        with warehouse.reader(self.home) as conn:
            inputs = report_inputs(conn, settings)
        return write_changed_reports(
            settings, "daily", DAYS, inputs, lambda starts: self.write(starts, settings)
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    conn = warehouse.connect(warehouse.published_path(tmp_path))
    try:
        insert_events(conn, _events(FIRST, 14, seed=5))
        _build(conn, Settings(home=tmp_path, funnels=(FUNNEL,)))
        conn.execute("checkpoint")
    finally:
        conn.close()
    return tmp_path


def test_unchanged_reports_are_kept_as_writing_them_again_would_give(home: Path) -> None:
    settings = Settings(home=home, funnels=(FUNNEL,))
    runs = Runs(home)
    first, kept = runs.run(settings)
    assert kept == 0 and runs.written == [DAYS]
    files = _files(first)
    assert all(paths.figures for paths in first)

    again, kept = runs.run(settings)
    assert kept == 3 and runs.written == [DAYS]  # nothing written
    assert again == first and _files(again) == files

    # The alerts' settings are in no report (and the webhook URL goes into nothing kept).
    alerting = dataclasses.replace(settings, alerts=AlertSettings(webhook_url="http://127.0.0.1:9"))
    assert runs.run(alerting)[1] == 3
    assert "127.0.0.1" not in (home / ".eventpulse" / "reports.json").read_text()

    # A report whose file is gone is written again, alone, and comes back the same.
    first[1].figures[0].unlink()
    again, kept = runs.run(settings)
    assert kept == 2 and runs.written[-1] == [DAYS[1]]
    assert _files(again) == files


def test_a_setting_or_the_data_changing_writes_every_report_again(home: Path) -> None:
    settings = Settings(home=home, funnels=(FUNNEL,))
    runs = Runs(home)
    runs.run(settings)
    euros = dataclasses.replace(settings, currency="EUR")
    _, kept = runs.run(euros)
    assert kept == 0 and runs.written[-1] == DAYS
    assert runs.run(euros)[1] == 3

    # One more event, on a day after the reports: the warehouse changed, so all are written
    # again (the inputs are the whole warehouse's, not the part a report reads).
    conn = warehouse.connect(warehouse.published_path(home))
    try:
        at = dt.datetime(2026, 2, 14, 9)
        insert_events(conn, [{"user_id": "late-comer", "event": "page_view", "ts": at}])
        _build(conn, euros)
        conn.execute("checkpoint")
    finally:
        conn.close()
    _, kept = runs.run(euros)
    assert kept == 0 and runs.written[-1] == DAYS


def test_reports_of_a_run_killed_while_writing_them_are_written_by_the_next(home: Path) -> None:
    settings = Settings(home=home, funnels=(FUNNEL,))
    runs = Runs(home)
    runs.run(settings)
    files = _files(runs.run(settings)[0])
    with warehouse.reader(home) as conn:
        inputs = report_inputs(conn, settings)

    def killed(starts: list[dt.date]) -> list[ReportPaths]:
        # Half a rewrite: the first report's figures are gone when the run dies.
        for figure in (home / "reports" / "daily" / DAYS[0].isoformat()).glob("*.png"):
            figure.unlink()
        raise KeyboardInterrupt

    euros = dataclasses.replace(settings, currency="EUR")
    with warehouse.reader(home) as conn:
        euro_inputs = report_inputs(conn, euros)
    assert euro_inputs != inputs
    with pytest.raises(KeyboardInterrupt):
        write_changed_reports(euros, "daily", DAYS, euro_inputs, killed)
    # Back to the settings the files were written with: they are not trusted, but written.
    again, kept = runs.run(settings)
    assert kept == 0 and runs.written[-1] == DAYS
    assert _files(again) == files


def test_a_report_written_outside_a_run_is_written_again_by_the_next_run(home: Path) -> None:
    """`eventpulse report` with other settings (another config) leaves no entry a run trusts."""
    settings = Settings(home=home, funnels=(FUNNEL,))
    runs = Runs(home)
    files = _files(runs.run(settings)[0])
    euros = dataclasses.replace(settings, currency="EUR")
    with writing_reports(euros, "daily", [DAYS[0]]), warehouse.reader(home) as conn:
        (written,) = build_reports(conn, euros, "daily", [DAYS[0]])
    assert "€" in written.markdown.read_text()
    again, kept = runs.run(settings)
    assert kept == 2 and runs.written[-1] == [DAYS[0]]
    assert _files(again) == files


def test_the_inputs_follow_every_column_of_every_table(home: Path) -> None:
    settings = Settings(home=home, funnels=(FUNNEL,))
    conn = warehouse.connect(warehouse.published_path(home))
    try:
        # A column named like a row alias would be must not hide the others.
        conn.execute("create table notes (t integer, u integer)")
        conn.execute("insert into notes values (1, 1)")
        before = report_inputs(conn, settings)
        conn.execute("update notes set u = 2")
        assert report_inputs(conn, settings) != before
        conn.execute("update notes set u = 1")
        assert report_inputs(conn, settings) == before
        conn.execute("insert into ingest_log select * from ingest_log limit 0")
        conn.execute("create or replace table mart_state as select 1 as bookkeeping")
        assert report_inputs(conn, settings) == before  # bookkeeping tables are left out
    finally:
        conn.close()
