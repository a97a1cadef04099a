"""Stage: reports. The marts -> `reports/daily/YYYY-MM-DD.md|.html` and
`reports/weekly/YYYY-Www.md|.html`, figures beside them (CONTRACT §5).

The work is in `assets.reports.build` (also called by `eventpulse report`); these assets
pick the days of the run's partition window and describe the result for the UI. Reports only
read the warehouse, so they take no slot in the `warehouse` pool.
"""

import datetime as dt
import os

import dagster as dg

from assets.reports.build import ReportPaths, build_daily_reports, build_weekly_reports
from assets.reports.sections import MART_TABLES
from pipelines.charts import drawn_in_background
from pipelines.partitions import DAILY, WEEKLY, window_days
from pipelines.resources import Warehouse

PREVIEW_CHARS = 4000
# From this many reports on, charts are drawn in worker processes (starting them costs ~2 s).
BACKGROUND_FROM_REPORTS = 8


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
    settings = warehouse.settings()
    written = []
    with warehouse.reader() as conn, drawn_in_background(_chart_workers(len(days))):
        for number, paths in enumerate(build_daily_reports(conn, settings, days), start=1):
            written.append(paths)
            # One line per report as it is written: a long backfill is never silent.
            context.log.info(f"daily report {number} of {len(days)}: {written[-1].html}")
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
    settings = warehouse.settings()
    written = []
    with warehouse.reader() as conn, drawn_in_background(_chart_workers(len(weeks))):
        for number, paths in enumerate(build_weekly_reports(conn, settings, weeks), start=1):
            written.append(paths)
            context.log.info(f"weekly report {number} of {len(weeks)}: {written[-1].html}")
    return dg.MaterializeResult(metadata=_metadata(written, weeks))


def _chart_workers(reports: int) -> int:
    """Processes that draw the charts while the next reports' numbers are queried: none for a
    few reports, else one per CPU."""
    return 0 if reports < BACKGROUND_FROM_REPORTS else os.cpu_count() or 1


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
