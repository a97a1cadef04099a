"""A killed run never needs a human (issue: crash and landing-folder reliability): the next CLI
run marks it failed and its warehouse pool slot goes back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.runner import CLI_TAG, free_abandoned_runs
from pipelines.ui import write_instance_config


@dg.op
def noop() -> None:
    pass


@dg.job
def one_step() -> None:
    noop()


def test_a_killed_cli_run_is_marked_failed_and_its_pool_slot_freed(tmp_path: Path) -> None:
    write_instance_config(tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    storage = instance.event_log_storage
    storage.set_concurrency_slots("warehouse", 1)
    # What kill -9 inside a warehouse step leaves: a started CLI run holding the one slot.
    killed = instance.create_run_for_job(job_def=one_step, tags=dict([CLI_TAG]))
    instance.run_storage.handle_run_event(
        killed.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name="one_step")
    )
    assert storage.claim_concurrency_slot("warehouse", killed.run_id, "events").is_claimed
    # A run the daemon launched and is still running keeps its state.
    running = instance.create_run_for_job(job_def=one_step, tags={"dagster/schedule_name": "x"})
    instance.run_storage.handle_run_event(
        running.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name="one_step")
    )

    assert free_abandoned_runs(instance) == [killed.run_id]
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(running.run_id).status == dg.DagsterRunStatus.STARTED
    assert storage.get_concurrency_run_ids() == set()
    assert storage.claim_concurrency_slot("warehouse", "next-run", "events").is_claimed
    instance.dispose()


def test_a_scheduled_run_whose_process_is_gone_is_marked_failed(tmp_path: Path) -> None:
    """The daemon's path: a run worker killed with no daemon left to notice. The next CLI run
    finds its RUN_START process gone, marks it failed and frees its slot; a live one stays."""
    write_instance_config(tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    storage = instance.event_log_storage
    storage.set_concurrency_slots("warehouse", 1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def started_run(pid: int) -> str:
        run = instance.create_run_for_job(job_def=one_step, tags={"dagster/schedule_name": "daily"})
        instance.report_dagster_event(
            dg.DagsterEvent(event_type_value="PIPELINE_START", job_name="one_step", pid=pid),
            run_id=run.run_id,
        )
        return run.run_id

    killed, alive = started_run(gone.pid), started_run(os.getpid())
    assert storage.claim_concurrency_slot("warehouse", killed, "events").is_claimed

    assert free_abandoned_runs(instance) == [killed]
    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
    assert storage.get_concurrency_run_ids() == set()
    instance.dispose()


def test_a_run_freezes_the_heap_it_imported_once_and_what_comes_later_stays_collectable() -> None:
    """In its own process: a freeze would keep this test session's objects forever."""
    probe = (
        "import gc, weakref\n"
        "from pipelines.runner import _freeze_imported_heap\n"
        "assert gc.get_freeze_count() == 0\n"
        "_freeze_imported_heap()\n"
        "first = gc.get_freeze_count()\n"
        "class Node: pass\n"
        "node = Node(); node.itself = node\n"  # a cycle made after the freeze
        "gone = weakref.ref(node); del node\n"
        "_freeze_imported_heap()\n"
        "gc.collect()\n"
        "print(first > 0, gc.get_freeze_count() == first, gone() is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    assert done.stdout.split() == ["True", "True", "True"], done.stderr
