"""A job the multiprocess-executor test reconstructs in each step's process (issue 7 item 6)."""

import dagster as dg

from pipelines.definitions import defs


def warehouse_job() -> dg.JobDefinition:
    """Ingest and the core tables: every step writes the warehouse from its own process."""
    job = dg.define_asset_job(
        "warehouse_writers",
        selection=dg.AssetSelection.assets("events", "users", "sessions", "daily_metrics"),
        partitions_def=defs.resolve_job_def("pipeline").partitions_def,
        executor_def=dg.multiprocess_executor,
    )
    return dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job], resources=defs.resources
    ).resolve_job_def("warehouse_writers")


def pipeline_job() -> dg.JobDefinition:
    """The job the daily schedule runs, with the project's executor (a process per step)."""
    return defs.resolve_job_def("pipeline")
