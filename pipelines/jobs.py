"""Jobs: the whole pipeline, run by the CLI (`eventpulse run`) and the schedules alike."""

import dagster as dg

# Every asset: the ingest partitions given to the run and everything downstream of them.
pipeline_job = dg.define_asset_job("pipeline", selection=dg.AssetSelection.all())
JOBS = [pipeline_job]
