"""Schedules: the morning pipeline run and the Monday weekly report (times in the project's
`timezone`, UTC by default, as the partitions they pick).

- `daily_pipeline_schedule`, 00:30 every day: `pipeline_job` for yesterday's arrival partition,
  i.e. ingest of `landing/events/date=<yesterday>/` and everything downstream, the daily report
  included.
- `weekly_report_schedule`, 02:00 on Mondays: `weekly_report` for the week that just ended
  (after the 00:30 run has refreshed Sunday).

Default status: RUNNING, so whatever starts a Dagster daemon on this project (`eventpulse ui`,
`dagster dev -w workspace.yaml`) produces the reports each morning without a click. Set
`EVENTPULSE_AUTOMATION=stopped` before starting it to have the schedules and the landing sensor
start stopped (turn them on in the UI's Automation page). Nothing runs them without a daemon:
`eventpulse run` and the tests are unaffected.
"""

import datetime as dt
import os

import dagster as dg

from pipelines.jobs import pipeline_job
from pipelines.partitions import DAILY, WEEKLY
from pipelines.settings import project_settings

AUTOMATION_ENV = "EVENTPULSE_AUTOMATION"
# "Yesterday" and "Monday" are the project's: schedules tick in the zone its partitions are cut in.
ZONE = project_settings().timezone


def automation_running() -> bool:
    """Schedules and sensors start RUNNING unless `EVENTPULSE_AUTOMATION=stopped`."""
    return os.environ.get(AUTOMATION_ENV, "").strip().lower() != "stopped"


def _default_status() -> dg.DefaultScheduleStatus:
    if automation_running():
        return dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultScheduleStatus.STOPPED


weekly_report_job = dg.define_asset_job(
    "weekly_report_job",
    # The corpus follows so that `eventpulse ask` can cite the new report.
    selection=dg.AssetSelection.assets("weekly_report", "corpus"),
    partitions_def=WEEKLY,
    description="The weekly report for one Monday week, then a corpus refresh.",
)


@dg.schedule(
    job=pipeline_job,
    cron_schedule="30 0 * * *",
    execution_timezone=ZONE,
    default_status=_default_status(),
    description=f"Every day at 00:30 {ZONE}: ingest yesterday's arrival folder and refresh "
    "everything downstream, the daily report included.",
)
def daily_pipeline_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    yesterday = context.scheduled_execution_time.date() - dt.timedelta(days=1)
    key = yesterday.isoformat()
    if not _has_partition(DAILY, key, context.scheduled_execution_time):
        return dg.SkipReason(f"{key} is before the first daily partition; nothing to ingest.")
    return dg.RunRequest(run_key=f"daily:{key}", partition_key=key)


@dg.schedule(
    job=weekly_report_job,
    cron_schedule="0 2 * * 1",
    execution_timezone=ZONE,
    default_status=_default_status(),
    description=f"Mondays at 02:00 {ZONE}: the weekly report for the week that just ended.",
)
def weekly_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    monday = context.scheduled_execution_time.date()
    week_start = monday - dt.timedelta(days=monday.weekday() + 7)
    key = week_start.isoformat()
    if not _has_partition(WEEKLY, key, context.scheduled_execution_time):
        return dg.SkipReason(f"The week of {key} is before the first weekly partition.")
    return dg.RunRequest(run_key=f"weekly:{key}", partition_key=key)


def _has_partition(
    partitions: dg.TimeWindowPartitionsDefinition, key: str, now: dt.datetime
) -> bool:
    return key in partitions.get_partition_keys(current_time=now)


SCHEDULES: list[dg.ScheduleDefinition] = [daily_pipeline_schedule, weekly_report_schedule]
