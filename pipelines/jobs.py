"""Jobs: the whole pipeline, run by the CLI (`eventpulse run`), the schedule and the sensor."""

import dagster as dg

from pipelines.partitions import DAILY

# Everything but the weekly report (weekly partitions; its own job in pipelines.schedules):
# the ingest partitions given to the run, then everything downstream of them.
pipeline_job = dg.define_asset_job(
    "pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("weekly_report"),
    partitions_def=DAILY,
    description="Ingest arrival days and rebuild every table, anomaly, report and the corpus.",
)
JOBS = [pipeline_job]
