"""Stage: reports. The marts -> `reports/daily/YYYY-MM-DD.md|.html` and
`reports/weekly/YYYY-Www.md|.html`, figures beside them (CONTRACT §5).

The work is in `assets.reports.build` (also called by `eventpulse report`); these assets
pick the days of the run's partition window and describe the result for the UI. Reports only
read the warehouse, so they take no slot in the `warehouse` pool.
"""

import datetime as dt
import os

import dagster as dg

from assets.reports.build import (
    ReportPaths,
    build_reports,
    build_reports_in_processes,
)
from assets.reports.sections import MART_TABLES
from assets.reports.unchanged import report_inputs, write_changed_reports
from pipelines.partitions import DAILY, WEEKLY, window_days
from pipelines.progress import counted
from pipelines.resources import Warehouse
from pipelines.warehouse import RUN_BUILD_ENV

PREVIEW_CHARS = 4000
# From this many reports on, they are written by one process per CPU (starting one costs ~2 s).
PROCESSES_FROM_REPORTS = 8


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=list(MART_TABLES),
    group_name="reports",
    kinds={"python", "html", "markdown"},
)
def daily_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """The daily report for each day of the run (CONTRACT §5): headline metrics against the
    previous day and the same weekday a week earlier, funnels, retention curves, the week-cohort
    heatmap and the day's anomalies, as Markdown and self-contained HTML with PNG figures under
    `reports/daily/`."""
    days = window_days(*context.partition_time_window)
    written = _write_reports(context, warehouse, "daily", days)
    return dg.MaterializeResult(metadata=_metadata(written, days))


@dg.asset(
    partitions_def=WEEKLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=list(MART_TABLES),
    group_name="reports",
    kinds={"python", "html", "markdown"},
)
def weekly_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """The weekly report for each Monday week of the run (CONTRACT §5): the week's totals and
    daily averages against the previous week, day by day, funnels, retention, cohorts and the
    week's anomalies, as Markdown and self-contained HTML under `reports/weekly/`."""
    weeks = window_days(*context.partition_time_window)[::7]  # weekly windows start on Mondays
    written = _write_reports(context, warehouse, "weekly", weeks)
    return dg.MaterializeResult(metadata=_metadata(written, weeks))


def _write_reports(
    context: dg.AssetExecutionContext, warehouse: Warehouse, kind: str, starts: list[dt.date]
) -> list[ReportPaths]:
    """Write the reports whose inputs changed (unchanged.py), saying how far it got: a long
    backfill is never silent. Returns every report's paths, oldest first."""
    settings = warehouse.settings()
    with warehouse.reader() as conn:
        inputs = report_inputs(conn, settings)
    reports, kept = write_changed_reports(
        settings, kind, starts, inputs, lambda stale: _write_stale(context, warehouse, kind, stale)
    )
    if kept:
        context.log.info(
            f"{kept} of {len(reports)} {kind} reports are unchanged (written from the same data, "
            "settings and code): kept as they are"
        )
    return reports


def _write_stale(
    context: dg.AssetExecutionContext, warehouse: Warehouse, kind: str, starts: list[dt.date]
) -> list[ReportPaths]:
    settings = warehouse.settings()
    processes = _processes(len(starts))
    written: list[ReportPaths] = []
    one_written = counted(context.log.info, f"{kind} report", len(starts))
    if processes > 1:
        context.log.info(f"writing {len(starts)} {kind} reports in {processes} processes")
        return build_reports_in_processes(settings, kind, starts, processes, one_written)
    with warehouse.reader() as conn:
        for paths in build_reports(conn, settings, kind, starts):
            written.append(paths)
            one_written(str(paths.html))
    return written


def _processes(reports: int) -> int:
    """One process per CPU for many reports; one for a few, and inside a run's private build
    (other processes could not open it while this one has it open)."""
    if reports < PROCESSES_FROM_REPORTS or os.environ.get(RUN_BUILD_ENV):
        return 1
    return os.cpu_count() or 1


def _metadata(written: list[ReportPaths], starts: list[dt.date]) -> dict[str, dg.MetadataValue]:
    """Where the reports are, which periods had no data, and the latest one as a preview."""
    latest = written[-1]
    without_data = [s.isoformat() for s, p in zip(starts, written, strict=True) if not p.has_data]
    return {
        "reports": dg.MetadataValue.int(len(written)),
        "figures": dg.MetadataValue.int(sum(len(p.figures) for p in written)),
        "periods_without_data": dg.MetadataValue.json(without_data),
        "markdown": dg.MetadataValue.path(str(latest.markdown)),
        "html": dg.MetadataValue.path(str(latest.html)),
        "paths": dg.MetadataValue.json([str(p.markdown) for p in written]),
        "preview": dg.MetadataValue.md(_preview(latest)),
    }


def _preview(paths: ReportPaths) -> str:
    """The latest report's Markdown without its images (their paths are relative to the file)."""
    lines = [line for line in paths.markdown.read_text().splitlines() if not line.startswith("![")]
    text = "\n".join(lines)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rsplit("\n", 1)[0] + "\n\n… (see the full report)"
    return text
