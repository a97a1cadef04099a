"""The command line never surprises (issue 16): impossible dates refuse in one sentence and write
nothing, a broken date in the config is one sentence, the demo's closing commands are never
hard-wrapped."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from pipelines import cli, warehouse
from pipelines.settings import load_settings


def _run_cli(home: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVENTPULSE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    if config is not None:
        env["EVENTPULSE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _files(home: Path) -> set[Path]:
    return {p for p in home.rglob("*") if p.is_file()}


def _one_sentence_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())  # rich wraps at the terminal's width
    assert text.startswith("error: ")
    return text


def test_run_of_a_day_with_no_arrival_folder_refuses_and_writes_nothing(home: Path) -> None:
    folder = home / "landing" / "events" / "date=2026-03-02"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text(
        '{"user_id": "u", "event": "page_view", "timestamp": "2026-03-02T10:00:00Z"}\n'
    )
    before = _files(home)
    result = _run_cli(home, "run", "--date", "2099-01-01")
    text = _one_sentence_error(result)
    assert "Nothing arrived on 2099-01-01" in text
    assert "arrival days with files are 2026-03-02 .. 2026-03-02" in text
    assert _files(home) == before  # no warehouse, no report, no Dagster run


@pytest.fixture
def warehouse_home(home: Path) -> Path:
    with warehouse.writer(home) as conn:
        conn.execute(
            "create table daily_metrics (metric_date date, dimension varchar, segment varchar, "
            "active_users bigint, new_users bigint, sessions bigint, events bigint, "
            "purchasers bigint, revenue double, conversion_rate double)"
        )
        conn.execute(
            "insert into daily_metrics values "
            "('2026-03-01', 'all', 'all', 5, 5, 5, 5, 1, 10.0, 0.2), "
            "('2026-03-02', 'all', 'all', 0, 0, 0, 0, 0, 0.0, 0.0), "
            "('2026-03-03', 'all', 'all', 7, 2, 7, 7, 1, 1234.5, 0.14)"
        )
    return home


@pytest.mark.parametrize("day", ["2025-01-01", "2099-01-01"])
def test_report_of_a_day_outside_the_data_refuses_and_writes_nothing(
    warehouse_home: Path, day: str
) -> None:
    before = _files(warehouse_home)
    text = _one_sentence_error(_run_cli(warehouse_home, "report", "--date", day))
    assert f"{day} is outside the data (2026-03-01 .. 2026-03-03); nothing was written" in text
    assert _files(warehouse_home) == before
    assert not (warehouse_home / "reports").exists()


def test_weekly_report_from_the_cli_and_a_week_outside_the_data(warehouse_home: Path) -> None:
    result = _run_cli(warehouse_home, "report", "--date", "2026-03-04", "--weekly")
    assert result.returncode == 0, result.stderr
    html = warehouse_home / "reports" / "weekly" / "2026-W10.html"
    assert html.is_file() and "$1,234.50" in html.read_text()  # the week's revenue, as money
    before = _files(warehouse_home)
    text = _one_sentence_error(
        _run_cli(warehouse_home, "report", "--date", "2026-04-01", "--weekly")
    )
    assert "The week of 2026-03-30 is outside the data" in text
    assert _files(warehouse_home) == before


def test_invalid_start_date_is_one_sentence(tmp_path: Path) -> None:
    config = tmp_path / "eventpulse.yaml"
    config.write_text("start_date: 2026-13-01\n")
    text = _one_sentence_error(_run_cli(tmp_path, "run", config=config))
    assert text == (
        "error: eventpulse.yaml: start_date '2026-13-01' is not a date; write it as YYYY-MM-DD."
    )
    config.write_text("start_date: 2026-02-01\n")
    assert load_settings(config_path=config, home=tmp_path).start_date == dt.date(2026, 2, 1)


def test_demo_closing_commands_are_never_cut_on_a_narrow_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=40, color_system=None))
    settings = load_settings(home=home)
    cli._print_tour(settings, dt.date(2026, 3, 1), dt.date(2026, 3, 8), dt.date(2026, 3, 2))
    lines = out.getvalue().splitlines()
    commands = [line.strip() for line in lines if "query " in line or " ask " in line]
    assert len(commands) == 3
    for command in commands:
        assert command.count('"') == 2, command  # the whole SQL on the one line
    sql = next(c for c in commands if "daily_metrics" in c)
    assert sql.endswith('order by metric_date desc limit 7"')


def test_query_rows_too_wide_for_the_terminal_print_one_block_per_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = ["metric_date", "conversion_rate", "explanation"]
    rows = [
        ("2026-03-01", 0.0123, "active users on platform ios were 40 against 80"),
        ("x", None, "y"),
    ]
    narrow = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=narrow, width=40, color_system=None))
    cli._print_rows(columns, rows)
    lines = narrow.getvalue().splitlines()
    assert "conversion_rate  0.0123" in lines
    assert "explanation      active users on platform ios were 40 against 80" in lines
    assert "conversion_rate  NULL" in lines
    wide = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=wide, width=200, color_system=None))
    cli._print_rows(columns, rows)
    header = next(line for line in wide.getvalue().splitlines() if "metric_date" in line)
    assert "conversion_rate" in header and "explanation" in header  # one table, names whole


def test_the_closing_commands_name_the_venv_script_when_eventpulse_is_not_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / ".venv" / "bin" / "eventpulse"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert cli._program_name() == ".venv/bin/eventpulse"
    monkeypatch.setattr(cli.shutil, "which", lambda name: str(script))
    assert cli._program_name() == "eventpulse"
