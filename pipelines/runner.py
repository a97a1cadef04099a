"""Run the pipeline through Dagster from the CLI: the same job the schedules run.

The whole run writes one private build of the warehouse that is published only when every
step and blocking check succeeded (`pipelines.warehouse.run_build`).
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from pipelines import warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import Settings


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance under the home folder, so the UI shows CLI runs too."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if not (home / "dagster.yaml").exists():
        from pipelines.ui import write_instance_config

        write_instance_config(home)
    return dg.DagsterInstance.get()


CLI_TAG = ("eventpulse/launched_by", "cli")
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def free_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the CLI runs whose process is gone, and give back the pool slots that
    finished runs still hold; returns the run ids marked failed.

    Call it under the writer lock: a CLI run holds the lock from start to end, so while we hold
    it no other CLI run is alive, and one still "started" was killed (kill -9, a full disk).
    Its warehouse pool slot would otherwise stay taken and the next run wait forever. Runs that
    the daemon launched are marked failed by their code server when their process dies; their
    slots come back here too (or from the daemon, `free_slots_after_run_end_seconds`).
    """
    abandoned = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            tags=dict([CLI_TAG]),
        )
    )
    for record in abandoned:
        instance.report_run_failed(
            record.dagster_run,
            "The eventpulse run that started this run is gone (killed or crashed); "
            "marked failed by the next run.",
        )
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        finished = (
            instance.get_run_records(
                filters=dg.RunsFilter(run_ids=list(holders), statuses=FINISHED)
            )
            if holders
            else []
        )
        for record in finished:
            storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return [record.dagster_run.run_id for record in abandoned]


def run_job(
    settings: Settings,
    job_name: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute `job_name` in process, over the partition range start..end (inclusive)."""
    # Imported here, not at the top: the partitions are built when the definitions are first
    # imported, from the landing folders present then (`eventpulse demo` writes them first).
    from pipelines.definitions import defs

    job = defs.resolve_job_def(job_name)
    tags: dict[str, str] = dict([CLI_TAG])
    if start and end and start != end:
        tags["dagster/asset_partition_range_start"] = start.isoformat()
        tags["dagster/asset_partition_range_end"] = end.isoformat()
    elif start:
        tags["dagster/partition"] = start.isoformat()
    with warehouse.run_build(settings.home):
        # Under the writer lock: concurrent first runs would race creating the instance's DB.
        instance = dagster_instance(settings)
        free_abandoned_runs(instance)
        result = job.execute_in_process(
            instance=instance,
            tags=tags,
            raise_on_error=False,
            # The step count lets the progress lines say "[5/20] sessions done".
            run_config={"loggers": {"progress": {"config": {"steps": len(job.graph.nodes)}}}},
        )
        if not result.success:
            # Raising inside run_build discards the build: the published warehouse stays as
            # the last successful run left it.
            raise EventpulseError(f"The {job_name} run failed: {_failure(result)}")
    return result


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause and "EventpulseError" not in error.cls_name:
                error = error.cause
            return f"step {event.step_key}: {error.message.strip().splitlines()[0]}"
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if data and not data.passed and data.blocking:
                return (
                    f"blocking check {data.check_name} on {data.asset_key.to_user_string()} failed"
                )
    return "see the Dagster run log (`eventpulse ui`)"
