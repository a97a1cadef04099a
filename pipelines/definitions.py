"""The one `Definitions` object: what `dagster dev -w workspace.yaml` loads.

The stages in graph order, one folder each under `assets/`; the folder's name is the Dagster
group of its assets (tests/pipelines/test_definitions.py holds every asset to it).
"""

import dagster as dg

from assets.anomalies import assets as anomalies
from assets.corpus import assets as corpus
from assets.ingest import assets as ingest
from assets.marts import cohorts, funnels, metrics, retention, sessions_users
from assets.reports import assets as reports
from pipelines.jobs import JOBS
from pipelines.progress import progress_logger
from pipelines.resources import Corpus, Embedder, Warehouse
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS
from pipelines.settings import config_file, project_settings
from pipelines.warehouse import WRITER_TAGS

STAGES = [ingest, sessions_users, metrics, funnels, retention, cohorts, anomalies, reports, corpus]

# Runs started from the UI, schedules and the sensor execute each step in its own process.
# Forking them from a server that has already imported the project saves seconds per step.
# Each step process also opens the Dagster instance, whose storage modules (SQLAlchemy, Alembic)
# the project does not import: preloaded too, they cost ~0.5 CPU s once, not in every step.
STEP_PROCESS_PRELOAD = ["pipelines.definitions", "dagster._core.storage.sqlite_storage"]
executor = dg.multiprocess_executor.configured(
    {
        "start_method": {"forkserver": {"preload_modules": STEP_PROCESS_PRELOAD}},
        # One warehouse writer at a time within a run (pipelines/warehouse.py WRITER_TAGS).
        "tag_concurrency_limits": [
            {"key": key, "value": value, "limit": 1} for key, value in WRITER_TAGS.items()
        ],
    }
)

_config = config_file()

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
            home=str(project_settings().home),
            config_path=str(_config) if _config.exists() else None,
        ),
        "corpus": Corpus(home=str(project_settings().home)),
        "embedder": Embedder(),
    },
)
