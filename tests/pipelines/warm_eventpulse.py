"""A warm `eventpulse` for the kill tests (issue 19 acceptance): the project and its heavy
libraries (Dagster and its SQLite run storage, DuckDB, matplotlib, scikit-learn, LanceDB, the
embedding model) are imported
once; each request forks a real `eventpulse` command from here. The killed process is a whole
`eventpulse run` (its own process group, kill -9 as from outside); only the seconds of imports
are saved, which makes each of the twenty kill moments, and the run after it, cheap.

Protocol, one line each way on stdin/stdout:
  `run <log file> <json list of arguments>` -> `<pid>`: fork `eventpulse <arguments>`, its
      output into the log file; or `schedule <log file> <tick ISO time>` -> `<pid>`: the daily
      schedule's run for that tick, as the daemon launches it (a process per step);
  `wait <pid>` -> `<exit code>` (negative: killed by that signal).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys


def preload() -> None:
    import dagster._core.storage.sqlite_storage  # noqa: F401
    import lancedb  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    import assets.corpus.store  # noqa: F401
    import assets.reports.build  # noqa: F401
    import pipelines.cli  # noqa: F401
    import pipelines.definitions  # noqa: F401
    from pipelines import embedding

    # Loading runs no inference, so no thread pool exists yet that a fork would break.
    embedding.load_model()


def run_cli(arguments: list[str]) -> int:
    from pipelines.cli import main

    sys.argv = ["eventpulse", *arguments]
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def run_schedule(tick: str) -> int:
    """What the daemon does on a tick of the daily schedule: evaluate it, launch its request."""
    import dagster as dg
    from multiprocess_job import pipeline_job

    from pipelines.schedules import daily_pipeline_schedule

    instance = dg.DagsterInstance.get()
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime.fromisoformat(tick)
    )
    request = daily_pipeline_schedule(context)
    tags = {
        **request.tags,
        "dagster/partition": request.partition_key,
        "dagster/schedule_name": daily_pipeline_schedule.name,
    }
    result = dg.execute_job(dg.reconstructable(pipeline_job), instance=instance, tags=tags)
    return 0 if result.success else 1


def fork(log_file: str, command: str, argument: str) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # its own process group: a kill of the group takes every step process
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(os.devnull)
        code = run_cli(json.loads(argument)) if command == "run" else run_schedule(argument)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    preload()
    print("ready", flush=True)
    for request in sys.stdin:
        command, _, rest = request.strip().partition(" ")
        if command == "wait":
            _, status = os.waitpid(int(rest), 0)
            code = os.waitstatus_to_exitcode(status)
            print(code, flush=True)
        else:
            log_file, _, argument = rest.partition(" ")
            print(fork(log_file, command, argument), flush=True)


if __name__ == "__main__":
    serve()
    # Every run it started has been waited for; tearing down the imported heap (Dagster, torch,
    # LanceDB's runtime) one object at a time took 2 s at load 1, 5 s at load 4, for nothing.
    sys.stdout.flush()
    os._exit(0)
