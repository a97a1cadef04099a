"""How eventpulse runs: settings, storage, the CLI, Dagster wiring (no stage logic)."""

import warnings

# Dagster marks some parameters we rely on (`backfill_policy`, pools) as beta or preview and warns
# about it at every import, in every process (CLI runs, `dagster dev`'s code servers): words that
# tell a user of eventpulse nothing. Only those warnings are silenced; any other still shows.
warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
