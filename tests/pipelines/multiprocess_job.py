"""A job the multiprocess-executor test reconstructs in each step's process (issue 7 item 6)."""

import dagster as dg

from pipelines.definitions import defs, executor


def warehouse_job() -> dg.JobDefinition:
    """Ingest and the core tables: every step writes the warehouse from its own process, with
    the project's executor (each step forked from a server that has imported the project, as
    in runs from the UI; Dagster's bare executor imports it all again in every step)."""
    job = dg.define_asset_job(
        "warehouse_writers",
        selection=dg.AssetSelection.assets("events", "users", "sessions", "daily_metrics"),
        partitions_def=defs.resolve_job_def("pipeline").partitions_def,
        executor_def=executor,
    )
    return dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job], resources=defs.resources
    ).resolve_job_def("warehouse_writers")


def pipeline_job() -> dg.JobDefinition:
    """The job the daily schedule runs, with the project's executor (a process per step)."""
    return defs.resolve_job_def("pipeline")
