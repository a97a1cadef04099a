"""Sensors: ingest a landing folder when it appears or its files change (CONTRACT §2).

`landing_sensor` looks at `landing/events/date=YYYY-MM-DD/` every 30 s. A folder's fingerprint
is a hash of its files' names, sizes and modification times; the cursor keeps the fingerprint
last acted on per folder. A folder is ingested (`pipeline_job`: the `events` partition and
everything downstream) when:
- it is new to the cursor and the warehouse has not loaded it since its files last changed
  (so starting the UI on a loaded home launches nothing, and a folder dropped before the
  sensor's first look is still picked up), or
- its fingerprint differs from the cursor's (files added, replaced or removed).
Folders whose files changed in the last few seconds wait for the next tick, so a copy in
progress is not half loaded. Consecutive days found in one tick share one run (the assets have
a single-run backfill policy), so a first look at a 90-day landing zone is one run, not 90.
Run keys are built from the days and their fingerprints: the same change never runs twice.

Default status: RUNNING (see `pipelines.schedules`; `EVENTPULSE_AUTOMATION=stopped` to start
it stopped).
"""

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipelines.errors import EventpulseError
from pipelines.jobs import pipeline_job
from pipelines.landing import arrival_files, arrival_folders, files_fingerprint
from pipelines.partitions import DAILY
from pipelines.resources import Warehouse
from pipelines.schedules import automation_running

SETTLE_SECONDS = 5.0
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class LandingFolder:
    day: dt.date
    fingerprint: str
    newest_mtime: float  # epoch seconds of the most recently modified file (0 when empty)


def scan_landing(landing_dir: Path) -> list[LandingFolder]:
    """Every arrival folder with its fingerprint, sorted by day."""
    return [_fingerprint(folder, day) for day, folder in arrival_folders(landing_dir)]


def _fingerprint(folder: Path, day: dt.date) -> LandingFolder:
    files = arrival_files(folder)
    newest = max((path.stat().st_mtime for path in files), default=0.0)
    return LandingFolder(day, files_fingerprint(folder, files), newest)


def changed_folders(
    folders: list[LandingFolder],
    cursor: dict[str, str],
    loaded_at: dict[dt.date, float],
    now: float,
) -> tuple[list[LandingFolder], dict[str, str]]:
    """The folders to ingest now and the next cursor (pure: the sensor's decision, testable)."""
    to_run, next_cursor = [], {}
    for folder in folders:
        key = folder.day.isoformat()
        if now - folder.newest_mtime < SETTLE_SECONDS:
            # Still being written: decide on the next tick (keep the old cursor entry meanwhile).
            if key in cursor:
                next_cursor[key] = cursor[key]
            continue
        next_cursor[key] = folder.fingerprint
        if key in cursor:
            if cursor[key] != folder.fingerprint:
                to_run.append(folder)
        elif loaded_at.get(folder.day, float("-inf")) < folder.newest_mtime:
            to_run.append(folder)
    return to_run, next_cursor


def run_requests(folders: list[LandingFolder]) -> list[dg.RunRequest]:
    """One run per stretch of consecutive days; a single day is a plain partition run."""
    requests = []
    for stretch in _consecutive(folders):
        first, last = stretch[0].day.isoformat(), stretch[-1].day.isoformat()
        prints = ",".join(f.fingerprint for f in stretch)
        if len(stretch) == 1:
            requests.append(
                dg.RunRequest(
                    run_key=f"landing:{first}:{prints}",
                    partition_key=first,
                    tags={"eventpulse/trigger": "landing"},
                )
            )
            continue
        digest = hashlib.sha256(prints.encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"landing:{first}..{last}:{digest}",
                tags={
                    RANGE_START_TAG: first,
                    RANGE_END_TAG: last,
                    "eventpulse/trigger": "landing",
                },
            )
        )
    return requests


def _consecutive(folders: list[LandingFolder]) -> list[list[LandingFolder]]:
    stretches: list[list[LandingFolder]] = []
    for folder in sorted(folders, key=lambda f: f.day):
        if stretches and (folder.day - stretches[-1][-1].day).days == 1:
            stretches[-1].append(folder)
        else:
            stretches.append([folder])
    return stretches


def loaded_days(warehouse: Warehouse) -> dict[dt.date, float]:
    """When each arrival day was last loaded (epoch seconds), from `ingest_log`."""
    try:
        with warehouse.reader() as conn:
            tables = {name for (name,) in conn.execute("show tables").fetchall()}
            if "ingest_log" not in tables:
                return {}
            rows = conn.execute(
                "select arrival_date, max(started_at) from ingest_log group by arrival_date"
            ).fetchall()
    except EventpulseError:  # no warehouse yet: nothing is loaded
        return {}
    return {day: started.replace(tzinfo=dt.UTC).timestamp() for day, started in rows}


@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=30,
    default_status=(
        dg.DefaultSensorStatus.RUNNING if automation_running() else dg.DefaultSensorStatus.STOPPED
    ),
    description="Ingests a landing/events/date=YYYY-MM-DD/ folder (and refreshes everything "
    "downstream) when it appears or its files change.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, warehouse: Warehouse
) -> dg.SensorResult | dg.SkipReason:
    settings = warehouse.settings()
    cursor = json.loads(context.cursor) if context.cursor else {}
    folders = scan_landing(settings.landing_dir)
    to_run, next_cursor = changed_folders(folders, cursor, loaded_days(warehouse), time.time())
    valid = set(DAILY.get_partition_keys())
    runnable = []
    for folder in to_run:
        if folder.day.isoformat() in valid:
            runnable.append(folder)
            continue
        # Not in the cursor: once the partitions cover it (after a reload), it is picked up.
        next_cursor.pop(folder.day.isoformat(), None)
        context.log.warning(
            f"landing folder date={folder.day} is outside the daily partitions (from "
            f"{DAILY.start:%Y-%m-%d} to tomorrow); set start_date in eventpulse.yaml and reload "
            "the code location to ingest it."
        )
    if not runnable and next_cursor == cursor:
        return dg.SkipReason(f"No new or changed folders under {settings.landing_dir}.")
    return dg.SensorResult(run_requests=run_requests(runnable), cursor=json.dumps(next_cursor))


SENSORS: list[dg.SensorDefinition] = [landing_sensor]
