"""Daily and weekly reports from the mart tables (CONTRACT §5): Markdown, HTML and PNG figures.

Dagster-free: the report assets, `eventpulse report` and the tests call these functions with a
DuckDB connection. This module assembles a report: the sections (`sections.py`, with their
figures from `figures.py`) rendered through the Jinja templates and written atomically.

Reports hold no generation timestamp: rewriting a report from the same warehouse gives the same
bytes, so re-runs and backfills change nothing downstream (e.g. the RAG corpus).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import queue
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from assets.reports.sections import existing_tables, has_data, report_sections
from pipelines import warehouse
from pipelines.as_of import as_of_warehouses
from pipelines.previews import markdown_cell
from pipelines.settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PROGRESS_POLL_SECONDS = 0.5  # how often the caller checks for a failed worker
# In a worker process of `build_reports_in_processes`: where to say each report it finished.
_finished_queue: Any = None


@dataclass(frozen=True)
class ReportPaths:
    """What one report wrote: the two documents and the figures beside them."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    has_data: bool


@dataclass(frozen=True)
class Period:
    """The days a report covers (inclusive) and where its files go."""

    kind: str  # 'daily' | 'weekly'
    label: str  # '2026-03-05' | '2026-W10'
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def span(self) -> str:
        """The days as text: "2026-03-05", or "2026-03-02 to 2026-03-08"."""
        if self.days == 1:
            return self.start.isoformat()
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def build_daily_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, day: dt.date
) -> ReportPaths:
    """Write `reports/daily/YYYY-MM-DD.md` and `.html` with figures under `YYYY-MM-DD/`."""
    (paths,) = build_daily_reports(conn, settings, [day])
    return paths


def build_daily_reports(
    conn: duckdb.DuckDBPyConnection, settings: Settings, days: Sequence[dt.date]
) -> Iterator[ReportPaths]:
    """The daily reports of `days`, oldest first, each as of its day: one replay of the
    history (pipelines/as_of.py), so a backfill's reports cost about linearly in its length."""
    yield from _build_reports(conn, settings, report_periods("daily", days))


def build_weekly_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, week_start: dt.date
) -> ReportPaths:
    """Write `reports/weekly/YYYY-Www.md` and `.html` for the Monday week starting `week_start`."""
    (paths,) = build_weekly_reports(conn, settings, [week_start])
    return paths


def build_weekly_reports(
    conn: duckdb.DuckDBPyConnection, settings: Settings, week_starts: Sequence[dt.date]
) -> Iterator[ReportPaths]:
    """The weekly reports of the Monday weeks starting on or before each of `week_starts`,
    oldest first, each as of the week's last day."""
    yield from _build_reports(conn, settings, report_periods("weekly", week_starts))


def report_periods(kind: str, starts: Sequence[dt.date]) -> list[Period]:
    """The periods of the `kind` ('daily' or 'weekly') reports of `starts`, oldest first: each
    day, or the Monday week each start falls in (once)."""
    if kind == "daily":
        return [Period("daily", day.isoformat(), day, day) for day in sorted(starts)]
    periods = []
    for monday in sorted({start - dt.timedelta(days=start.weekday()) for start in starts}):
        year, week, _ = monday.isocalendar()
        periods.append(
            Period("weekly", f"{year}-W{week:02d}", monday, monday + dt.timedelta(days=6))
        )
    return periods


def build_reports_in_processes(
    settings: Settings,
    kind: str,
    starts: Sequence[dt.date],
    processes: int,
    on_written: Callable[[str], object] | None = None,
) -> list[ReportPaths]:
    """The `kind` ('daily' or 'weekly') reports of `starts`, oldest first, written by
    `processes` processes that each open the published warehouse and replay the history for
    every `processes`-th day (a report's cost is mostly one CPU's Python: the marts' SQL per
    day and matplotlib). Each process gets its share of the CPUs for DuckDB's threads: more
    threads than cores only add the cost of switching between them. `on_written(html path)`
    is called here, in the caller's process, as each report is written."""
    shares = interleaved_shares(sorted(starts), processes)
    threads = max(1, (os.cpu_count() or 1) // max(1, len(shares)))
    context = multiprocessing.get_context("spawn")  # not forked: the caller holds DuckDB threads
    # The workers say each report they finish on this queue (given to them as they start: a
    # queue cannot travel in a task's arguments), so a long backfill is never silent.
    finished = context.Queue()
    with ProcessPoolExecutor(
        len(shares), mp_context=context, initializer=_report_to, initargs=(finished,)
    ) as pool:
        futures = [pool.submit(_write_share, settings, kind, days, threads) for days in shares]
        _relay_progress(finished, futures, on_written or (lambda _: None))
        written = [paths for future in futures for paths in future.result()]
    return sorted(written, key=lambda paths: paths.markdown.name)


def _relay_progress(
    finished: Any, futures: list[Future], on_written: Callable[[str], object]
) -> None:
    """Pass each report the workers say they finished to `on_written`, until every worker has
    said it is done (None) or one failed without saying so (the caller's `result()` raises
    its error)."""
    working = len(futures)
    while working:
        try:
            html = finished.get(timeout=PROGRESS_POLL_SECONDS)
        except queue.Empty:
            if any(future.done() and future.exception() for future in futures):
                return
            continue
        if html is None:
            working -= 1
        else:
            on_written(html)


def _report_to(finished: Any) -> None:
    global _finished_queue
    _finished_queue = finished


def _write_share(
    settings: Settings, kind: str, starts: list[dt.date], threads: int
) -> list[ReportPaths]:
    """`write_reports` in a worker, then None on the queue: after its last report's line."""
    try:
        return write_reports(settings, kind, starts, threads)
    finally:
        _finished_queue.put(None)


def interleaved_shares(days: list[dt.date], parts: int) -> list[list[dt.date]]:
    """`days` dealt out like cards: share i holds days i, i + parts, ... A day's replay and
    report cost more as the history before it grows, by how much depends on the data; dealt
    out, every share walks the same history and does the same work, whatever that growth is
    (contiguous stretches cut by a guessed cost left one process working alone at the end)."""
    parts = max(1, min(parts, len(days)))
    return [days[i::parts] for i in range(parts)] if days else []


def build_reports(
    conn: duckdb.DuckDBPyConnection, settings: Settings, kind: str, starts: Sequence[dt.date]
) -> Iterator[ReportPaths]:
    """The `kind` ('daily' or 'weekly') reports of `starts`, oldest first."""
    build = build_daily_reports if kind == "daily" else build_weekly_reports
    yield from build(conn, settings, starts)


def write_reports(
    settings: Settings, kind: str, starts: list[dt.date], threads: int
) -> list[ReportPaths]:
    """One process's share of `build_reports_in_processes`, with `threads` DuckDB threads (the
    replay's in-memory warehouse takes the reader's)."""
    written = []
    with warehouse.reader(settings.home) as conn:
        conn.execute("set threads = $threads", {"threads": threads})
        for paths in build_reports(conn, settings, kind, starts):
            written.append(paths)
            if _finished_queue is not None:
                _finished_queue.put(str(paths.html))
    return written


def _build_reports(
    conn: duckdb.DuckDBPyConnection, settings: Settings, periods: list[Period]
) -> Iterator[ReportPaths]:
    with as_of_warehouses(conn, settings, [period.end for period in periods]) as as_of:
        for period in periods:
            # The marts as of the period's last day (what had arrived by then): a report
            # written again later, after more days were loaded, shows the same numbers.
            yield _build_report(as_of(period.end), settings, period)


def _build_report(
    conn: duckdb.DuckDBPyConnection, settings: Settings, period: Period
) -> ReportPaths:
    """One report from `conn`, whose marts are those of the period's last day."""
    out_dir = settings.reports_dir / period.kind
    figures_dir = out_dir / period.label
    # A rewrite starts clean: a figure from an earlier version must not linger beside the new one.
    if figures_dir.exists():
        shutil.rmtree(figures_dir)
    figures_dir.mkdir(parents=True)
    tables = existing_tables(conn)
    with_data = has_data(conn, tables, period)
    sections = report_sections(conn, settings, period, tables, figures_dir) if with_data else []
    context = {
        "period": period,
        "title": _title(period),
        "has_data": with_data,
        "no_data": _no_data_sentence(period, tables),
        "sections": sections,
    }
    markdown = out_dir / f"{period.label}.md"
    html = out_dir / f"{period.label}.html"
    _write_text(markdown, _render(f"{period.kind}.md.j2", context))
    _write_text(html, _render(f"{period.kind}.html.j2", context))
    figures = tuple(sorted(figures_dir.glob("*.png")))
    if not figures:
        figures_dir.rmdir()
    return ReportPaths(markdown=markdown, html=html, figures=figures, has_data=with_data)


def _title(period: Period) -> str:
    if period.kind == "daily":
        return f"Daily report {period.label} ({period.start:%A})"
    return f"Weekly report {period.label} ({period.start.isoformat()} to {period.end.isoformat()})"


def _no_data_sentence(period: Period, tables: set[str]) -> str:
    what = "this day" if period.kind == "daily" else "this week"
    if "daily_metrics" not in tables:
        return f"No data: the warehouse has no daily_metrics table yet, so {what} has no report."
    return f"No data: no events were recorded on {what} ({period.span})."


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=lambda name: bool(name and name.endswith(".html.j2")),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["md_cell"] = markdown_cell


def _render(template: str, context: dict[str, Any]) -> str:
    return _ENVIRONMENT.get_template(template).render(**context)
