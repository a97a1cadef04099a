"""Run the pipeline through Dagster from the CLI: the same job the schedules run.

The run writes one private build of the warehouse that is published only when every step and
blocking check succeeded (`pipelines.warehouse.run_build`). Reports and the corpus describe
the warehouse, so they run after that publish, from the published file, as a second Dagster
run under the same writer lock: a kill -9 at any moment never leaves a report or a corpus
chunk about data that was not published.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

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
# What a full disk (ENOSPC) or a file-size limit (EFBIG) looks like in a step's error.
DISK_FULL = re.compile(r"No space left on device|File too large|disk is full|Disk full", re.I)
# Asset groups that only read the warehouse to write files (reports) or the corpus.
PUBLISHED_READER_GROUPS = frozenset({"reports", "corpus"})
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def free_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs whose process is gone, and give back the pool slots that finished
    runs still hold; returns the run ids marked failed.

    Call it under the writer lock: a CLI run holds the lock from start to end, so while we hold
    it no other CLI run is alive, and one still "started" was killed (kill -9, a full disk).
    Its warehouse pool slot would otherwise stay taken and the next run wait forever. A run
    started elsewhere (the schedule, the sensor, the UI) may be alive between its steps without
    the lock: it is abandoned when the process that started it (its RUN_START event's pid) no
    longer exists, as after a kill -9 of its run worker with no daemon left to notice.
    """
    started = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    )
    abandoned = [
        record
        for record in started
        if record.dagster_run.tags.get(CLI_TAG[0]) == CLI_TAG[1]
        or _run_process_gone(instance, record.dagster_run.run_id)
    ]
    for record in abandoned:
        instance.report_run_failed(
            record.dagster_run,
            "The process that ran this run is gone (killed or crashed); "
            "marked failed by the next eventpulse run.",
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


def _run_process_gone(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when the run's RUN_START event names a process that no longer exists on this
    machine (a run not started yet, or without a pid, is left alone)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    event = records[0].event_log_entry.dagster_event if records else None
    if event is None or not event.pid:
        return False
    return not _process_alive(event.pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        # A zombie (killed, not yet reaped by its parent) is gone as far as the run goes.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def run_job(
    settings: Settings,
    job_name: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Execute `job_name` in process, over the partition range start..end (inclusive): first
    every asset that writes the warehouse, in one build that is then published, then the
    reports and the corpus from the published warehouse. Returns the Dagster runs' results."""
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
    writers, readers = _split_published_readers(job)
    results = []
    # The lock spans both runs: while it is held no other CLI run is alive (free_abandoned_runs).
    with warehouse.writer_lock(settings.home), _disk_full_is_one_sentence(job_name):
        # Under the writer lock: concurrent first runs would race creating the instance's DB.
        instance = dagster_instance(settings)
        _freeze_imported_heap()
        free_abandoned_runs(instance)
        if writers:
            with warehouse.run_build(settings.home, locked=True):
                # Raising inside run_build discards the build: the published warehouse stays
                # as the last successful run left it, and no report or chunk describes it.
                results.append(_execute(job, job_name, instance, tags, writers))
        if readers:
            results.append(_execute(job, job_name, instance, tags, readers))
    return results


def _freeze_imported_heap() -> None:
    """Leave the objects alive now out of every later garbage collection (`gc.freeze`).

    By now the process has imported Dagster, DuckDB, pandas, the project and opened the
    instance: ~700,000 objects that live until the command ends. Each full collection during
    the run walked all of them again, ~0.5 CPU s of a small run's ~5.5. Called once a process:
    a second run of the same command (`eventpulse demo`) keeps the first run's objects
    collectable.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()


@contextlib.contextmanager
def _disk_full_is_one_sentence(job_name: str) -> Iterator[None]:
    """A full disk outside a step (Dagster's own run storage, SQLite) is the same sentence as
    inside one. (OSError is the CLI's: it says what the system said, and the fix.)"""
    try:
        yield
    except (EventpulseError, OSError):
        raise
    except Exception as exc:
        if not DISK_FULL.search(str(exc)):
            raise
        first_line = str(exc).strip().splitlines()[0]
        raise EventpulseError(_disk_full_sentence(job_name, first_line)) from None


def _split_published_readers(
    job: dg.JobDefinition,
) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """The job's assets that write the warehouse, and those that only read it (reports, corpus)."""
    graph = job.asset_layer.asset_graph
    keys = sorted(job.asset_layer.selected_asset_keys, key=lambda key: key.to_user_string())
    readers = [key for key in keys if graph.get(key).group_name in PUBLISHED_READER_GROUPS]
    return [key for key in keys if key not in readers], readers


def _execute(
    job: dg.JobDefinition,
    job_name: str,
    instance: dg.DagsterInstance,
    tags: Mapping[str, str],
    selection: list[dg.AssetKey],
) -> dg.ExecuteInProcessResult:
    result = job.execute_in_process(
        instance=instance,
        tags=dict(tags),
        asset_selection=selection,
        raise_on_error=False,
        # The step count lets the progress lines say "[5/20] sessions done".
        run_config={"loggers": {"progress": {"config": {"steps": _step_count(job, selection)}}}},
    )
    if not result.success:
        failure = _failure(result)
        if DISK_FULL.search(failure):
            raise EventpulseError(_disk_full_sentence(job_name, failure))
        raise EventpulseError(f"The {job_name} run failed: {failure}")
    return result


def _step_count(job: dg.JobDefinition, selection: list[dg.AssetKey]) -> int:
    """The steps a run of `selection` executes: one per asset definition (a multi-asset such as
    the funnels is one step for its tables) and one per check defined apart from its asset."""
    graph = job.asset_layer.asset_graph
    definitions = {id(d): d for d in (graph.get(key).assets_def for key in selection)}
    inside = {check for d in definitions.values() for check in d.check_keys}
    checks = [c for c in graph.asset_check_keys if c.asset_key in selection and c not in inside]
    return len(definitions) + len(checks)


def _disk_full_sentence(job_name: str, failure: str) -> str:
    return (
        f"The {job_name} run stopped because the disk is full ({failure}); free space on the "
        "disk of the home folder and run it again (nothing half-written was published)."
    )


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
