"""A demo warehouse built in process, without Dagster: demo event files generated, every arrival
day loaded, every mart and the anomalies built, as a run over them leaves the tables (reports
and the corpus are not written). For the tests and benchmarks that need realistic tables and
not a run: one way to build them, instead of one copy per test module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from assets.anomalies.assets import write_anomalies
from assets.anomalies.incremental import score_changed_days
from assets.ingest.load import load_range
from assets.marts.cohorts import build_cohorts
from assets.marts.funnels import build_funnels
from assets.marts.metrics import build_daily_metrics
from assets.marts.retention import build_retention
from assets.marts.sessions_users import build_sessions, build_users
from pipelines import warehouse
from pipelines.demo import generate
from pipelines.landing import landing_dates
from pipelines.settings import Settings


def build_demo_warehouse(
    home: Path, settings: Settings, *, days: int, users: int, seed: int, end: dt.date
) -> None:
    """Generate `days` days of demo data ending on `end` under `home` and build its warehouse
    with `settings` (whose home is `home`)."""
    generate(home, days=days, users=users, seed=seed, end=end)
    with warehouse.writer(home) as conn:
        load_range(conn, settings.landing_dir, landing_dates(settings.landing_dir))
        build_sessions(conn, settings)
        build_users(conn, settings)
        build_daily_metrics(conn, settings)
        build_funnels(conn, settings)
        build_retention(conn)
        build_cohorts(conn)
        write_anomalies(conn, score_changed_days(conn, settings.anomalies), settings.anomalies)
