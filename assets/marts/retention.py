"""Stage: retention. `events`, `users` -> `retention` (CONTRACT §3), one set of rows per
retention definition of eventpulse.yaml (default: `any`, first event then any event).

`build_retention` rebuilds it from every event (the reference) and `update_retention` brings it
up to date from the changed persons (assets/marts/changes.py): each user's cohort and the
periods they returned in are kept in the internal `retention_users`
(sql/intermediate/retention_user_rows.sql), recomputed for the persons whose events changed,
and `retention` is counted again from it (one row per user, definition and granularity: no
event is read again; the periods that have started and `is_complete` follow the last event
date at every count). The asset, its chart and its check wrap them for Dagster. The chart and
the preview show the first definition.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from matplotlib.ticker import MaxNLocator

from assets.marts.changes import MartModels, Refresh, refresh_mart
from pipelines.charts import new_figure, png_base64, save_png
from pipelines.resources import Warehouse
from pipelines.settings import DEFAULT_RETENTION, RetentionDefinition
from pipelines.warehouse import WRITER_ASSET

CHART_PERIODS = 12  # weekly periods drawn in the chart and the preview
RETENTION = MartModels(
    "retention",
    (
        "intermediate/retention_scope.sql",
        "intermediate/retention_user_rows.sql",
        "intermediate/retention_users.sql",
        "marts/retention.sql",
    ),
    (
        "intermediate/retention_scope_update.sql",
        "intermediate/retention_user_rows.sql",
        "intermediate/retention_users_update.sql",
        "marts/retention.sql",
    ),
    ("retention_users", "retention"),
)


def build_retention(
    conn: duckdb.DuckDBPyConnection,
    definitions: tuple[RetentionDefinition, ...] = DEFAULT_RETENTION,
    timezone: str = "UTC",
) -> int:
    """Rebuild `retention` (needs `users`) for each definition, with days in the project's
    `timezone`; returns its row count."""
    refresh_mart(conn, RETENTION, _params(definitions, timezone), full=True)
    return conn.execute("select count(*) from retention").fetchall()[0][0]


def update_retention(
    conn: duckdb.DuckDBPyConnection,
    definitions: tuple[RetentionDefinition, ...] = DEFAULT_RETENTION,
    timezone: str = "UTC",
) -> Refresh:
    """Bring `retention` up to date (update `users` first): the changed persons' rows of
    `retention_users`, then the counts; a full rebuild when the definitions or the zone
    changed, or `users` was rebuilt."""
    return refresh_mart(conn, RETENTION, _params(definitions, timezone))


def _params(definitions: tuple[RetentionDefinition, ...], timezone: str) -> dict:
    return {"definitions": definition_parameters(definitions), "timezone": timezone}


def definition_parameters(definitions: tuple[RetentionDefinition, ...]) -> list[dict]:
    """The definitions as the `$definitions` parameter of `retention.sql`."""
    return [
        {"definition": d.name, "start_event": d.start_event, "return_event": d.return_event}
        for d in definitions
    ]


def period_zero_failures(
    conn: duckdb.DuckDBPyConnection,
    definitions: tuple[RetentionDefinition, ...] = DEFAULT_RETENTION,
) -> list[tuple]:
    """Period-0 rows whose retention_rate is not 1.0, in the definitions whose returning event
    is any event (there it is 1.0 by construction, CONTRACT §3; with a return_event, period 0
    counts who returned)."""
    any_return = [d.name for d in definitions if d.return_event is None]
    return conn.execute(
        """
        select granularity, mode, cohort_start, retention_rate
        from retention
        where period = 0 and abs(retention_rate - 1.0) > 1e-9
            and list_contains($definitions, definition)
        order by all
        """,
        {"definitions": any_return},
    ).fetchall()


def definitions_without_rows(
    conn: duckdb.DuckDBPyConnection, definitions: tuple[RetentionDefinition, ...]
) -> list[str]:
    """Definitions with no cohort at all: their start_event never occurs (a misspelt event name
    shows up here, since event names are open)."""
    built = {
        name for (name,) in conn.execute("select distinct definition from retention").fetchall()
    }
    return [d.name for d in definitions if d.name not in built]


def weekly_curve(
    conn: duckdb.DuckDBPyConnection, definition: str = "any"
) -> list[tuple[int, float, float]]:
    """(period, exact, on_or_after): weekly retention over all cohorts, weighted by cohort size."""
    return conn.execute(
        """
        select
            period,
            sum(retained_users) filter (where mode = 'exact')
                / sum(cohort_users) filter (where mode = 'exact'),
            sum(retained_users) filter (where mode = 'on_or_after')
                / sum(cohort_users) filter (where mode = 'on_or_after')
        from retention
        where granularity = 'week' and period <= $max_period and definition = $definition
            and is_complete
        group by period order by period
        """,
        {"max_period": CHART_PERIODS, "definition": definition},
    ).fetchall()


def weekly_cohort_table(
    conn: duckdb.DuckDBPyConnection, cohorts: int = 8, definition: str = "any"
) -> str:
    """The latest weekly cohorts as a Markdown table of exact retention (%) by period."""
    rows = conn.execute(
        """
        select cohort_start, cohort_users, period, if(is_complete, retention_rate, null)
        from retention
        where granularity = 'week' and mode = 'exact' and period <= $max_period
            and definition = $definition
            and cohort_start in (
                select distinct cohort_start from retention
                where granularity = 'week' and definition = $definition
                order by cohort_start desc limit $cohorts
            )
        order by cohort_start, period
        """,
        {"max_period": CHART_PERIODS, "cohorts": cohorts, "definition": definition},
    ).fetchall()
    table: dict[tuple, dict[int, float | None]] = {}
    for cohort_start, size, period, rate in rows:
        table.setdefault((cohort_start, size), {})[period] = rate
    periods = range(max((r[2] for r in rows), default=0) + 1)
    lines = [
        "| week cohort | users | " + " | ".join(f"W{p}" for p in periods) + " |",
        "|---|---:|" + "---:|" * len(periods),
    ]
    for (cohort_start, size), rates in table.items():
        cells = " | ".join(_cell(rates, p) for p in periods)
        lines.append(f"| {cohort_start} | {size} | {cells} |")
    return "\n".join(lines)


def _cell(rates: dict[int, float | None], period: int) -> str:
    """A rate, "running" for a week that has not ended (no value yet), empty when not begun."""
    if period not in rates:
        return ""
    rate = rates[period]
    return "running" if rate is None else f"{100 * rate:.1f}%"


def draw_weekly_curve(curve: list[tuple[int, float, float]], path: Path) -> bytes:
    """Save the weekly retention curve as a PNG at `path`; returns the PNG bytes."""
    figure = new_figure(6, 3.2, dpi=90)
    axes = figure.subplots()
    periods = [p for p, _, _ in curve]
    axes.plot(periods, [100 * e for _, e, _ in curve], marker="o", label="exact")
    axes.plot(periods, [100 * o for _, _, o in curve], marker="s", label="on or after")
    axes.set(xlabel="weeks since first event", ylabel="retained users (%)", ylim=(0, 105))
    axes.set_title("Weekly retention, all cohorts (weighted by size)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend()
    return save_png(figure, path, stamp_software=True)


@dg.asset(group_name="marts", kinds={"duckdb"}, deps=["events", "users"], **WRITER_ASSET)
def retention(warehouse: Warehouse) -> dg.MaterializeResult:
    """Retention by calendar cohort of the first event (or of a definition's start_event): day
    (periods 0..30), week (Monday weeks, 0..12) and month (0..12), modes `exact` and
    `on_or_after`, only periods started by the last event date, one set per definition
    (CONTRACT §3 retention). Attaches the weekly retention curve of the first definition."""
    definitions = warehouse.settings().retention
    shown = definitions[0].name
    with warehouse.writer() as conn:
        refresh = update_retention(conn, definitions, warehouse.settings().timezone)
        rows = conn.execute("select count(*) from retention").fetchall()[0][0]
        curve = weekly_curve(conn, shown)
        table = weekly_cohort_table(conn, definition=shown)
        empty = definitions_without_rows(conn, definitions)
    chart_path = warehouse.settings().reports_dir / "assets" / "retention.png"
    png = draw_weekly_curve(curve, chart_path)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            **refresh.metadata(),
            "definitions": ", ".join(d.name for d in definitions),
            # A start_event that never occurs (misspelt?) gives a definition no rows at all.
            "definitions_without_rows": ", ".join(empty) or "none",
            "chart": dg.MetadataValue.path(str(chart_path)),
            "retention_curve": dg.MetadataValue.md(
                f"![weekly retention](data:image/png;base64,{png_base64(png)})"
            ),
            "preview": dg.MetadataValue.md(table),
        }
    )


@dg.asset_check(asset=retention, blocking=True)
def retention_period_zero_is_one(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Period 0 retains every user of its cohort: retention_rate is 1.0 in both modes (in the
    definitions whose returning event is any event)."""
    definitions = warehouse.settings().retention
    with warehouse.reader() as conn:
        failures = period_zero_failures(conn, definitions)
    return dg.AssetCheckResult(
        passed=not failures,
        metadata={
            "failing_rows": len(failures),
            "examples": dg.MetadataValue.json(
                [
                    {"granularity": g, "mode": m, "cohort_start": str(c), "retention_rate": r}
                    for g, m, c, r in failures[:10]
                ]
            ),
        },
    )
