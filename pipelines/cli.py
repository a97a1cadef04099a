"""The `eventpulse` command (CONTRACT §1). Each command calls the same functions the assets do.

Errors a user can fix print as one sentence without a traceback; `--debug` shows it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pipelines.errors import EventpulseError
from pipelines.landing import arrival_files, arrival_folder, landing_dates, stray_folders
from pipelines.settings import Settings, load_settings

if TYPE_CHECKING:  # duckdb is imported by the commands that use it (a fast --help)
    import duckdb

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
    from pipelines.demo import generate as generate_demo

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

    Without options: every day that has a landing folder. A range runs as one Dagster run. A
    day whose folder is missing or empty keeps what earlier runs loaded (`forget` removes it);
    folders that are no arrival day (a bad date, after tomorrow, before start_date) are named
    and skipped. A day whose files did not change since its last load (names, sizes, times)
    is not read again, and reports whose data, settings and code did not change are kept.
    """
    settings = _settings()
    _report_stray_folders(settings)
    first, last = _run_range(settings, date, start, end)
    _refuse_days_without_data(settings, first, last)
    _run_pipeline(settings, first, last)


def _refuse_days_without_data(settings: Settings, first: dt.date, last: dt.date) -> None:
    """A range with no arrival files and nothing loaded before (`run --date 2099-01-01`) would
    only write empty reports that then pass for the latest: say so, and run nothing."""
    landing = settings.landing_dir
    with_files = [
        day for day in landing_dates(landing) if arrival_files(arrival_folder(landing, day))
    ]
    if any(first <= day <= last for day in with_files) or _loaded_between(settings, first, last):
        return
    span = str(first) if first == last else f"{first} .. {last}"
    known = (
        f"arrival days with files are {with_files[0]} .. {with_files[-1]}"
        if with_files
        else "drop files in landing/events/date=YYYY-MM-DD/ first"
    )
    raise EventpulseError(
        f"Nothing arrived on {span}: no files under {landing} for it and nothing loaded from it "
        f"before, so nothing was run or written; {known}."
    )


def _loaded_between(settings: Settings, first: dt.date, last: dt.date) -> bool:
    """Whether an earlier run loaded an arrival day in the range (re-running it keeps its data)."""
    from pipelines import warehouse

    if not settings.warehouse_path.exists():
        return False
    with warehouse.reader(settings.home) as conn:
        ((tables,),) = conn.execute(
            "select count(*) from duckdb_tables() where table_name = 'ingest_log'"
        ).fetchall()
        if not tables:
            return False
        ((loaded,),) = conn.execute(
            "select count(*) from ingest_log where arrival_date between $first and $last",
            {"first": first, "last": last},
        ).fetchall()
    return loaded > 0


def _report_stray_folders(settings: Settings) -> None:
    for stray in stray_folders(settings.landing_dir):
        # The reason holds a folder name: data, printed as text, never as markup.
        errors.print(f"[yellow]skipped:[/] {escape(stray.reason)}", highlight=False)


def _run_range(
    settings: Settings, date: str | None, start: str | None, end: str | None
) -> tuple[dt.date, dt.date]:
    if date and (start or end):
        raise EventpulseError("Pass either --date or --start/--end, not both.")
    if date:
        day = _parse_date(date, "--date")
        _check_after_start_date(settings, day, "--date")
        return day, day
    days = landing_dates(settings.landing_dir)
    if settings.start_date:
        for day in [d for d in days if d < settings.start_date]:
            errors.print(
                f"[yellow]skipped:[/] landing folder date={day} is before start_date "
                f"{settings.start_date} in {_config_name(settings)}; set start_date to {day} "
                "or earlier to load it.",
                highlight=False,
            )
        days = [d for d in days if d >= settings.start_date]
    first = _parse_date(start, "--start") or (days[0] if days else None)
    last = _parse_date(end, "--end") or (days[-1] if days else None)
    if first is None or last is None:
        raise EventpulseError(
            f"No arrival folders under {settings.landing_dir}; drop files in "
            "landing/events/date=YYYY-MM-DD/ or pass --date/--start/--end."
        )
    if last < first:
        raise EventpulseError(f"--end {last} is before --start {first}; swap them.")
    _check_after_start_date(settings, first, "--start")
    return first, last


def _check_after_start_date(settings: Settings, day: dt.date, option: str) -> None:
    if settings.start_date and day < settings.start_date:
        raise EventpulseError(
            f"{option} {day} is before start_date {settings.start_date} in "
            f"{_config_name(settings)}; set start_date to {day} or earlier to run it."
        )


def _config_name(settings: Settings) -> str:
    return settings.config_path.name if settings.config_path else "eventpulse.yaml"


@app.command()
def forget(
    date: Annotated[str, typer.Option(help="The arrival day YYYY-MM-DD whose data to remove.")],
) -> None:
    """Remove one arrival day's events and quarantine rows from the warehouse, then refresh
    everything downstream. (Deleting a landing folder does not: a missing or empty folder is
    "nothing arrived", and keeps what earlier runs loaded.)"""
    from assets.ingest.load import forget_partition
    from pipelines import warehouse

    settings = _settings()
    day = _parse_date(date, "--date")
    _check_after_start_date(settings, day, "--date")
    folder = arrival_folder(settings.landing_dir, day)
    if arrival_files(folder):
        raise EventpulseError(
            f"{folder} still holds files, which the next run would load again; move them out "
            "of landing/events first."
        )
    with warehouse.writer(settings.home) as conn:
        forget_partition(conn, day, settings.timezone)
    console.print(f"Removed arrival day {day} from the warehouse; refreshing the tables.")
    _run_pipeline(settings, day, day)


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
    max_rows: Annotated[
        int, typer.Option(help="Rows the table shows (csv and json print every row).")
    ] = 1000,
) -> None:
    """Read-only SQL over the warehouse (runs fine while a pipeline run is writing)."""
    from pipelines.query import open_query

    if format not in ("table", "csv", "json"):
        raise EventpulseError(f"--format {format!r} is not one of table, csv, json.")
    if max_rows < 0:
        raise EventpulseError(f"--max-rows {max_rows} is negative; pass 0 or more.")
    # Rows arrive in batches and are printed as they come: a huge result is never held whole.
    with open_query(_settings().home, sql, timeout=timeout) as result:
        if format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(result.columns)
            for batch in result.batches:
                writer.writerows(batch)
        elif format == "json":
            _print_json_rows(result.columns, result.batches)
        else:
            _print_table(result.columns, result.batches, max_rows)


def _print_json_rows(columns: list[str], batches: Iterator[list[tuple]]) -> None:
    """One JSON array of row objects, written row by row (as `json.dumps(rows, indent=1)`)."""
    first = True
    for batch in batches:
        for row in batch:
            text = json.dumps(dict(zip(columns, row, strict=True)), default=str, indent=1)
            sys.stdout.write(("[" if first else ",") + "\n " + text.replace("\n", "\n "))
            first = False
    sys.stdout.write("[]\n" if first else "\n]\n")


def _print_table(columns: list[str], batches: Iterator[list[tuple]], max_rows: int) -> None:
    kept: list[tuple] = []
    total = 0
    for batch in batches:
        kept.extend(batch[: max(0, max_rows - total)])
        total += len(batch)  # rows beyond max_rows are counted, not kept
    _print_rows(columns, kept)
    if total > max_rows:
        console.print(
            f"[dim]{total} rows; the first {max_rows} are shown, {total - max_rows} left out "
            "(--max-rows shows more, --format csv prints them all)[/]"
        )
    else:
        console.print(f"[dim]{total} rows[/]")


def _print_rows(columns: list[str], rows: list[tuple]) -> None:
    """A table when it fits the terminal; else one block per row (`column  value` lines, as
    psql's expanded display), so no cell or column name is ever wrapped mid-word."""
    cells = [[Text("NULL" if v is None else str(v)) for v in row] for row in rows]
    table = Table(show_lines=False)
    for name in columns:
        table.add_column(Text(name), no_wrap=True)
    for row in cells:
        table.add_row(*row)
    # The width the table would take unconstrained (measure() caps it at the console's).
    natural = Measurement.get(console, console.options.update_width(10**6), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    width = max((len(name) for name in columns), default=0)
    for number, row in enumerate(cells, start=1):
        console.print(Text(f"-[ row {number} ]" + "-" * max(width - 6, 4), style="dim"))
        for name, cell in zip(columns, row, strict=True):
            console.print(Text(f"{name:<{width}}  ") + cell, soft_wrap=True)


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of demo history.")] = 90,
    users: Annotated[int, typer.Option(help="Users arriving over the period.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Generate demo logs, run every asset, write reports, build the corpus; print where."""
    from pipelines.demo import generate as generate_demo
    from pipelines.runner import run_job

    settings = _settings()
    console.print(f"[bold]1/3 Generating[/] {days} days of demo events into {settings.home}")
    summary = generate_demo(settings.home, days=days, users=users, seed=seed)
    console.print(f"    {summary}")
    first, last = summary.first_date, summary.last_date
    arrival_days = landing_dates(settings.landing_dir)
    console.print(
        f"[bold]2/3 Running the pipeline[/] for arrival days {arrival_days[0]} .. {arrival_days[-1]}"
    )
    run_job(settings, "pipeline", arrival_days[0], arrival_days[-1])
    last_monday = last - dt.timedelta(days=last.weekday() + (0 if last.weekday() == 6 else 7))
    console.print(f"[bold]3/3 Weekly report[/] for the week of {last_monday}")
    run_job(settings, "weekly_report_job", last_monday)
    _prepare_query_embedder()
    _print_tour(settings, first, last, last_monday)


def _prepare_query_embedder() -> None:
    """Export the model for `ask` and `search` now (once, a few seconds with torch loaded), so
    the first question does not pay for it."""
    from pipelines.onnx_embedding import ensure_export

    ensure_export()


def _print_tour(settings: Settings, first: dt.date, last: dt.date, week: dt.date) -> None:
    year, number, _ = week.isocalendar()
    reports = settings.reports_dir
    console.print("\n[green bold]eventpulse demo is ready.[/]")
    for label, path in (
        ("Warehouse (DuckDB)", settings.warehouse_path),
        ("Daily report", reports / "daily" / f"{last}.html"),
        ("Weekly report", reports / "weekly" / f"{year}-W{number:02d}.html"),
        ("RAG corpus (LanceDB)", settings.lancedb_dir),
        ("Injected anomalies", settings.labels_path),
    ):
        console.print(f"  {label:<22} {path}")
    program = _program_name()
    console.print("\nTry:")
    if program != "eventpulse":
        console.print(
            f"  (eventpulse is not on your PATH: run it as {program}, or first "
            "`source .venv/bin/activate`)",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    for command in (
        "query \"select * from daily_metrics where dimension = 'all' order by metric_date desc limit 7\"",
        'query "select metric_date, metric, segment, explanation from anomalies where is_anomaly"',
        'ask "what happened to android purchases?"',
        "ui",
    ):
        # soft_wrap: a command is copied as one line, never cut in the middle of its SQL.
        console.print(f"  {program} {command}", soft_wrap=True, markup=False, highlight=False)


def _program_name() -> str:
    """How the user can call this command again: `eventpulse` when that name on the PATH is
    this program, else the path they ran (`.venv/bin/eventpulse` after `make demo`)."""
    invoked = Path(sys.argv[0])
    on_path = shutil.which("eventpulse")
    if invoked.name != "eventpulse":
        return "eventpulse" if on_path else ".venv/bin/eventpulse"
    if on_path and Path(on_path).resolve() == invoked.resolve():
        return "eventpulse"
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(invoked)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about your metrics.")],
    k: Annotated[int, typer.Option(help="How many sources to retrieve.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer a question from the marts (metrics, segments, periods, funnels, retention,
    anomalies) or else from the corpus, citing the table rows and documents used."""
    from assets.corpus.answer import answer_json, format_answer
    from assets.corpus.answer import ask as ask_corpus

    settings = _settings()
    answer = ask_corpus(settings.home, settings, question, k=k)
    if answer.warning:
        errors.print(f"[yellow]warning:[/] {answer.warning}", highlight=False)
    if as_json:
        print(json.dumps(answer_json(answer), default=str, indent=1))
    else:
        console.print(format_answer(answer), highlight=False, markup=False)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for.")] = None,
    k: Annotated[int, typer.Option(help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    queries_file: Annotated[
        Path | None,
        typer.Option(help="One query a line; prints one JSON line per query, in order."),
    ] = None,
) -> None:
    """Retrieve corpus chunks (hybrid vector + full-text search), without answering."""
    from assets.corpus.retrieval import format_results, query_results_json, search_many

    home = _settings().home
    if (query is None) == (queries_file is None):
        raise EventpulseError("Pass either a QUERY or --queries-file FILE (one query a line).")
    if queries_file is not None:
        if not queries_file.is_file():
            raise EventpulseError(f"--queries-file {queries_file} does not exist.")
        queries = [line.strip() for line in queries_file.read_text().splitlines() if line.strip()]
        for text, results in zip(queries, search_many(home, queries, k), strict=True):
            print(json.dumps(query_results_json(text, results), default=str))
        return
    results = search_many(home, [query], k)[0]
    if as_json:
        print(json.dumps(query_results_json(query, results), default=str, indent=1))
    else:
        console.print(format_results(results), highlight=False, markup=False)


@app.command()
def corpus() -> None:
    """Build or refresh the RAG corpus, embedding only new or changed chunks."""
    from assets.corpus.store import build_corpus
    from pipelines.onnx_embedding import embed_documents
    from pipelines.progress import embed_with_progress

    stats = build_corpus(_settings(), embed_fn=embed_with_progress(embed_documents, console.print))
    _prepare_query_embedder()
    console.print(stats.summary(), highlight=False)
    for problem in stats.problems:
        errors.print(f"[yellow]skipped:[/] {problem}", highlight=False)


@app.command()
def report(
    date: Annotated[str, typer.Option(help="The day YYYY-MM-DD to (re)write the report for.")],
    weekly: Annotated[
        bool, typer.Option("--weekly", help="The weekly report of the Monday week of --date.")
    ] = False,
) -> None:
    """(Re)write one day's report, or with --weekly its week's (Markdown + HTML + figures)."""
    from assets.reports.build import build_daily_report, build_weekly_report
    from assets.reports.unchanged import writing_reports
    from pipelines import warehouse

    settings = _settings()
    day = _parse_date(date, "--date")
    with warehouse.reader(settings.home) as conn:
        if weekly:
            monday = day - dt.timedelta(days=day.weekday())
            _refuse_week_outside_data(conn, monday)
            with writing_reports(settings, "weekly", [monday]):
                paths = build_weekly_report(conn, settings, monday)
        else:
            _refuse_day_outside_data(conn, day)
            with writing_reports(settings, "daily", [day]):
                paths = build_daily_report(conn, settings, day)
    console.print(f"Wrote {paths.markdown} and {paths.html} ({len(paths.figures)} figures)")


def _refuse_week_outside_data(conn: duckdb.DuckDBPyConnection, monday: dt.date) -> None:
    """A week with no day inside the data is refused like a day outside it."""
    first, last = _data_range(conn)
    if monday + dt.timedelta(days=6) < first or monday > last:
        raise EventpulseError(
            f"The week of {monday} is outside the data ({first} .. {last}); nothing was "
            "written. Pick a day in that range."
        )


def _data_range(conn: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date]:
    ((found,),) = conn.execute(
        "select count(*) from duckdb_tables() where table_name = 'daily_metrics'"
    ).fetchall()
    ((first, last),) = (
        conn.execute("select min(metric_date), max(metric_date) from daily_metrics").fetchall()
        if found
        else [(None, None)]
    )
    if first is None or last is None:
        raise EventpulseError(
            "The warehouse has no daily metrics yet; run `eventpulse run` first, then write "
            "reports."
        )
    return first, last


def _refuse_day_outside_data(conn: duckdb.DuckDBPyConnection, day: dt.date) -> None:
    """A report of a day before the first or after the last event date would be an empty page
    that passes for a report (and, after the last, for the latest one)."""
    first, last = _data_range(conn)
    if not first <= day <= last:
        raise EventpulseError(
            f"{day} is outside the data ({first} .. {last}); nothing was written. Pick a day "
            "in that range."
        )


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the web UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (`dagster dev`) on this project; schedules and sensor run."""
    from pipelines.ui import PROJECT_ROOT, run_ui, ui_command, ui_env

    settings = _settings()
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.dagster_home})")
    # Ctrl-C and `kill` alike stop the webserver and the daemon with it (run_ui).
    code = run_ui(
        ui_command(settings, host=host, port=port), env=ui_env(settings), cwd=PROJECT_ROOT
    )
    if code:
        raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except EventpulseError as exc:
        if _debug:
            raise
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except OSError as exc:
        # A full disk, a folder that is not writable: what the system said, and the fix.
        if _debug:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        reason = exc.strerror or type(exc).__name__
        errors.print(
            f"[red]error:[/] {escape(reason + where)}; free space or fix the folder's "
            "permissions, then run the command again (nothing half-written was published).",
            highlight=False,
        )
        sys.exit(1)
    except MemoryError:
        # Whatever ran out of memory has let go of it by now: saying so is safe.
        if _debug:
            raise
        errors.print(
            "[red]error:[/] the command ran out of memory; ask for less at a time (filter, "
            "aggregate, or a shorter date range), then run it again.",
            highlight=False,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
