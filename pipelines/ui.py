"""`eventpulse ui`: the Dagster instance config and the `dagster dev` command for this project.

The instance lives in `DAGSTER_HOME` (default `<home>/dagster`, CONTRACT §1). Its `dagster.yaml`
makes DuckDB writes take turns across all runs: every asset that writes the warehouse is in the
`warehouse` pool, and pools default to one slot. Runs are queued one at a time, so a backfill,
a schedule and the landing sensor never compete for the two-core machine or the writer lock.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pipelines.schedules import AUTOMATION_ENV
from pipelines.settings import Settings
from pipelines.warehouse import WRITER_POOL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
CONFIG_MARKER = "# Written by eventpulse"

INSTANCE_CONFIG = f"""{CONFIG_MARKER} (`eventpulse ui`). Remove this line to keep your own edits:
# eventpulse rewrites this file only while the line is here.
concurrency:
  pools:
    # Every asset that writes warehouse.duckdb has pool="{WRITER_POOL}": one step at a time.
    default_limit: 1
  runs:
    # The run queue: backfills, schedules and sensor runs wait their turn.
    max_concurrent_runs: 1
run_monitoring:
  enabled: true
  # A run that ended gives its pool slots back: a killed run worker is marked failed by its
  # code server, and without this its warehouse slot would stay taken.
  free_slots_after_run_end_seconds: 10
telemetry:
  enabled: false
nux:
  enabled: false
"""


def write_instance_config(dagster_home: Path) -> Path:
    """Write `<dagster_home>/dagster.yaml` unless the user has made it their own; return its path."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    if path.exists() and not path.read_text().startswith(CONFIG_MARKER):
        return path
    path.write_text(INSTANCE_CONFIG)
    return path


def ui_command(
    settings: Settings, host: str = "127.0.0.1", port: int = 3000, workspace: Path = WORKSPACE
) -> list[str]:
    """`dagster dev` on the project's workspace; run it with `ui_env(settings)`, cwd PROJECT_ROOT."""
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "--workspace",
        str(workspace),
        "--host",
        host,
        "--port",
        str(port),
    ]


def ui_env(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `ui_command`: absolute home, config and DAGSTER_HOME.

    Absolute, because `dagster dev` starts the code server in the workspace's working directory,
    where a relative `./data` would point somewhere else. Writes the instance config as well.
    """
    env = dict(os.environ if environ is None else environ)
    # As Settings.dagster_home, but from the environment given (a test passes its own).
    dagster_home = Path(env.get("DAGSTER_HOME") or settings.home / "dagster").resolve()
    write_instance_config(dagster_home)
    env["DAGSTER_HOME"] = str(dagster_home)
    env["EVENTPULSE_HOME"] = str(settings.home.resolve())
    if settings.config_path is not None:
        env["EVENTPULSE_CONFIG"] = str(settings.config_path.resolve())
    env.setdefault(AUTOMATION_ENV, "running")
    # The embedding model ships in a package: nothing may reach for a model hub.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


STOP_GRACE_SECONDS = 30  # dagster dev's own shutdown of its webserver, daemon and code servers


def run_ui(command: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run `dagster dev` until it exits, and stop it with everything it started when this
    process is interrupted (Ctrl-C) or terminated (`kill`, SIGHUP of a closed terminal).

    `dagster dev` runs in its own process group, so its webserver, daemon and code servers can
    be signalled together: SIGINT first, as Ctrl-C in a terminal does, then SIGTERM and SIGKILL
    for whatever is still there after a grace period. Without this, `kill` of `eventpulse ui`
    left them running, schedules on and the port taken."""
    # The signals that stop us must reach us (and dagster dev, which inherits the mask): a
    # blocked signal is inherited from whoever started us, and Python's multiprocessing blocks
    # SIGINT and SIGTERM in its thread while it starts a helper process.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    # dagster dev gets SIGINT back at its default even when ours is ignored (a background job
    # of a script): stop_process_group asks it to shut down gracefully with SIGINT.
    process = subprocess.Popen(
        command, env=env, cwd=cwd, start_new_session=True, preexec_fn=default_sigint
    )

    def stop_children(signum: int, frame: object) -> None:
        raise _Stop(signum)

    # An ignored SIGHUP stays ignored: `nohup eventpulse ui` must survive its terminal closing.
    # SIGTERM is always ours: nobody ignores `kill` on purpose, but an ignored one is inherited
    # by accident (Dagster run in-process maps SIGTERM to the SIGINT handler, and a background
    # job of a script has SIGINT ignored), and `kill` would then leave the UI running.
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop_children) for sig in wanted}
    try:
        return process.wait()
    except (KeyboardInterrupt, _Stop):
        print("Stopping the Dagster UI: its webserver, daemon and code servers.", file=sys.stderr)
        stop_process_group(process)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def default_sigint() -> None:
    """For `preexec_fn`: SIGINT at its default in the child, even when ours is ignored, so
    `stop_process_group` can ask `dagster dev` to shut down gracefully."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Stop(Exception):  # noqa: N818 (a signal, not an error)
    """SIGTERM or SIGHUP arrived."""


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGINT to the group (what Ctrl-C sends), then SIGTERM, then SIGKILL, each after a grace
    period; returns when the group leader is gone and the group is empty or killed."""
    for sig, grace in (
        (signal.SIGINT, STOP_GRACE_SECONDS),
        (signal.SIGTERM, 10),
        (signal.SIGKILL, 10),
    ):
        if not _group_alive(process.pid):
            break
        if sig != signal.SIGINT:
            print(f"Some did not stop; sending {sig.name}.", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(process.pid):
            process.poll()  # reap the leader, so it does not linger as a zombie
            time.sleep(0.2)
    process.poll()


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies awaiting their parent excepted)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False
