"""`eventpulse ui`: the Dagster instance config and the `dagster dev` command for this project.

The instance lives in `DAGSTER_HOME` (default `<home>/dagster`, CONTRACT §1). Its `dagster.yaml`
makes DuckDB writes take turns across all runs: every asset that writes the warehouse is in the
`warehouse` pool, and pools default to one slot. Runs are queued one at a time, so a backfill,
a schedule and the landing sensor never compete for the two-core machine or the writer lock.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pipelines.schedules import AUTOMATION_ENV
from pipelines.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
WAREHOUSE_POOL = "warehouse"
CONFIG_MARKER = "# Written by eventpulse"

INSTANCE_CONFIG = f"""{CONFIG_MARKER} (`eventpulse ui`). Remove this line to keep your own edits:
# eventpulse rewrites this file only while the line is here.
concurrency:
  pools:
    # Every asset that writes warehouse.duckdb has pool="{WAREHOUSE_POOL}": one step at a time.
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
