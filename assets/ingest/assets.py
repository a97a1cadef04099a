"""Stage: ingest. Event files of one arrival day -> `events`, `quarantine`, `ingest_log`.

The asset and its blocking checks; the work is in `assets.ingest.load` (CONTRACT §2).
"""

import dagster as dg

from assets.ingest.load import (
    IngestResult,
    conservation_failures,
    duplicate_event_ids,
    load_range,
)
from pipelines.landing import stray_folders
from pipelines.partitions import DAILY, window_days
from pipelines.previews import markdown_rows
from pipelines.resources import Warehouse
from pipelines.warehouse import WRITER_ASSET


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"duckdb"},
    **WRITER_ASSET,
)
def events(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Clean, deduplicated product events, loaded by arrival day from
    `landing/events/date=YYYY-MM-DD/` (JSON lines, CSV, Parquet, gzip). Rejected records go to
    `quarantine` with a reason; each load is logged in `ingest_log` (CONTRACT §2)."""
    settings = warehouse.settings()
    days = window_days(*context.partition_time_window)
    with warehouse.writer() as conn:
        # A range run (a backfill) loads its days together: each day as its own load would.
        results: list[IngestResult] = load_range(
            conn, settings.landing_dir, days, settings.aliases, settings.timezone
        )
        for result in results:
            context.log.info(result.summary())
        for stray in stray_folders(settings.landing_dir):
            context.log.warning(stray.reason)
        total_rows = conn.execute("select count(*) from events").fetchall()[0][0]
        # The partition's own rows: the UI shows this number on the day(s) of this run.
        partition_rows = conn.execute(
            "select count(*) from events where arrival_date between $first and $last",
            {"first": days[0], "last": days[-1]},
        ).fetchall()[0][0]
        preview = conn.sql(
            """
            select event_date, event, platform, channel, count(*) as events
            from events where arrival_date between $first and $last
            group by all order by events desc limit 10
            """,
            params={"first": days[0], "last": days[-1]},
        ).fetchall()
    return dg.MaterializeResult(
        metadata=_ingest_metadata(results, partition_rows, total_rows, preview)
    )


def _ingest_metadata(
    results: list[IngestResult], partition_rows: int, total_rows: int, preview: list[tuple]
) -> dict:
    reasons: dict[str, int] = {}
    for result in results:
        for reason, count in result.by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
    return {
        "dagster/row_count": partition_rows,
        "events_in_warehouse": total_rows,
        "arrival_days": len(results),
        "days_with_nothing_arrived": sum(r.nothing_arrived for r in results),
        "records_read": sum(r.records for r in results),
        "loaded": sum(r.loaded for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "quarantine_by_reason": dg.MetadataValue.json(reasons),
        "unreadable_files": sum(r.unreadable_files for r in results),
        "loads": dg.MetadataValue.md("\n".join(f"- {r.summary()}" for r in results)),
        "preview": dg.MetadataValue.md(
            markdown_rows(["event_date", "event", "platform", "channel", "events"], preview)
        ),
    }


@dg.asset_check(asset=events, blocking=True)
def records_are_conserved(warehouse: Warehouse) -> dg.AssetCheckResult:
    """For every arrival day: records read = rows in `events` + rows in `quarantine`."""
    with warehouse.reader() as conn:
        failures = conservation_failures(conn)
    return dg.AssetCheckResult(
        passed=not failures,
        metadata={
            "days_not_conserved": len(failures),
            "examples": dg.MetadataValue.json(
                [
                    {"arrival_date": str(d), "records": r, "events": e, "quarantine": q}
                    for d, r, e, q in failures[:10]
                ]
            ),
        },
    )


@dg.asset_check(asset=events, blocking=True)
def event_ids_are_unique(warehouse: Warehouse) -> dg.AssetCheckResult:
    """No event id appears twice in `events`."""
    with warehouse.reader() as conn:
        duplicated = duplicate_event_ids(conn)
    return dg.AssetCheckResult(passed=duplicated == 0, metadata={"duplicated_ids": duplicated})


@dg.asset_check(asset=events)
def landing_folders_are_arrival_days(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every folder under landing/events is an arrival day: `date=YYYY-MM-DD`, a real date, not
    after tomorrow. The others are skipped, never loaded (WARN: their files wait for a fix)."""
    strays = stray_folders(warehouse.settings().landing_dir)
    return dg.AssetCheckResult(
        passed=not strays,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "stray_folders": len(strays),
            "reasons": dg.MetadataValue.md("\n".join(f"- {s.reason}" for s in strays) or "none"),
        },
    )
