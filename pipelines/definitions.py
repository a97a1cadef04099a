"""The one `Definitions` object: what `dagster dev -w workspace.yaml` loads."""

import dagster as dg

from assets import (
    anomalies,
    cohorts,
    corpus,
    funnels,
    ingest,
    metrics,
    reports,
    retention,
    sessions_users,
)
from pipelines.jobs import JOBS
from pipelines.resources import Corpus, Embedder, Llm, Warehouse
from pipelines.runner import progress_logger
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS
from pipelines.settings import config_file, home_dir, load_settings

STAGES = [ingest, sessions_users, metrics, funnels, retention, cohorts, anomalies, corpus, reports]

_settings = load_settings()
_config = config_file()


def _llm_resource() -> Llm:
    llm = _settings.llm
    if not llm.configured:
        return Llm()
    # The key stays in the environment: Dagster shows only the variable's name in the UI.
    api_key = dg.EnvVar(llm.api_key_env) if llm.api_key_env else None
    return Llm(base_url=llm.base_url, model=llm.model, api_key=api_key)


# Runs started from the UI, schedules and the sensor execute each step in its own process.
# Forking them from a server that has already imported the project saves seconds per step.
executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}
)

defs = dg.Definitions(
    executor=executor,
    assets=dg.load_assets_from_modules(STAGES),
    asset_checks=dg.load_asset_checks_from_modules(STAGES),
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    # "console" is Dagster's default; "progress" is what `eventpulse run` prints.
    loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    resources={
        "warehouse": Warehouse(
            home=str(home_dir()), config_path=str(_config) if _config.exists() else None
        ),
        "corpus": Corpus(home=str(home_dir())),
        "embedder": Embedder(),
        "llm": _llm_resource(),
    },
)
