"""The `eventpulse` command (CONTRACT §1). Each command calls the same functions the assets do.

Errors a user can fix print as one sentence without a traceback; `--debug` shows it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.errors import EventpulseError
from pipelines.settings import Settings, landing_dates, load_settings

app = typer.Typer(
    help="eventpulse: product event logs -> DuckDB analytics, anomalies, reports and cited answers.\n\n"
    "Home folder: $EVENTPULSE_HOME (default ./data). Config: $EVENTPULSE_CONFIG "
    "(default ./eventpulse.yaml).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)
_debug = False


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    global _debug
    _debug = debug


def _settings() -> Settings:
    return load_settings()


def _parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EventpulseError(
            f"{option} {value!r} is not a date; write it as YYYY-MM-DD."
        ) from None


@app.command()
def generate(
    days: Annotated[int, typer.Option(help="Days of history to generate.")] = 90,
    users: Annotated[int, typer.Option(help="Users arriving over the period.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 7,
    out: Annotated[Path | None, typer.Option(help="Home folder to write into.")] = None,
) -> None:
    """Write demo event files to landing/, plus demo_labels.json and docs/changelog.md."""
    from pipelines.demo_data import generate as generate_demo

    home = out or _settings().home
    summary = generate_demo(home, days=days, users=users, seed=seed)
    console.print(f"[green]Generated[/] {summary}")
    console.print(f"Landing zone: {home / 'landing' / 'events'}")


@app.command()
def run(
    date: Annotated[str | None, typer.Option(help="One arrival day YYYY-MM-DD.")] = None,
    start: Annotated[str | None, typer.Option(help="First arrival day of a range.")] = None,
    end: Annotated[str | None, typer.Option(help="Last arrival day of a range.")] = None,
) -> None:
    """Ingest arrival days and rebuild everything downstream, through Dagster.

    Without options: every day that has a landing folder. A range runs as one Dagster run.
    """
    settings = _settings()
    first, last = _run_range(settings, date, start, end)
    _run_pipeline(settings, first, last)


def _run_range(
    settings: Settings, date: str | None, start: str | None, end: str | None
) -> tuple[dt.date, dt.date]:
    if date and (start or end):
        raise EventpulseError("Pass either --date or --start/--end, not both.")
    if date:
        day = _parse_date(date, "--date")
        return day, day
    days = landing_dates(settings.landing_dir)
    first = _parse_date(start, "--start") or (days[0] if days else None)
    last = _parse_date(end, "--end") or (days[-1] if days else None)
    if first is None or last is None:
        raise EventpulseError(
            f"No arrival folders under {settings.landing_dir}; drop files in "
            "landing/events/date=YYYY-MM-DD/ or pass --date/--start/--end."
        )
    if last < first:
        raise EventpulseError(f"--end {last} is before --start {first}; swap them.")
    return first, last


def _run_pipeline(settings: Settings, first: dt.date, last: dt.date) -> None:
    from pipelines.runner import run_job

    console.print(f"[bold]Running the pipeline[/] for arrival days {first} .. {last}")
    run_job(settings, "pipeline", first, last)
    console.print(f"[green]Done.[/] Warehouse: {settings.warehouse_path}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run (SELECT only).")],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    timeout: Annotated[float, typer.Option(help="Stop the query after this many seconds.")] = 60,
) -> None:
    """Read-only SQL over the warehouse (runs fine while a pipeline run is writing)."""
    from pipelines.query import run_query

    if format not in ("table", "csv", "json"):
        raise EventpulseError(f"--format {format!r} is not one of table, csv, json.")
    result = run_query(_settings().home, sql, timeout=timeout)
    if format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif format == "json":
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        print(json.dumps(rows, default=str, indent=1))
    else:
        table = Table(*result.columns, show_lines=False)
        for row in result.rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"[dim]{len(result.rows)} rows[/]")


def main() -> None:
    try:
        app()
    except EventpulseError as exc:
        if _debug:
            raise
        errors.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
