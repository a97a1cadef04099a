"""Stage: funnels. `events` -> `funnel_steps`, `funnel_daily` (CONTRACT §3 Funnel semantics).

The models read `events` through `funnel_copies` (the kept rows of the internal `event_copies`
with each user's integer key, `sql/staging/tables.sql`) and name users again through
`user_keys` in `funnel_attempts`.

`build_funnels` rebuilds from every event (the reference); `update_funnels` is what the asset
and the as-of replay run: a user's counted attempt depends on their own events only, so the
models run over the events of the persons whose events changed (`mart_changes`, as the other
incremental marts, assets/marts/changes.py), their rows of the internal `funnel_user_attempts`
are replaced, and both contract tables are aggregated again from that table (one row per user
and funnel, the entry event's fields included: no event is read again). Another funnel
definition, zone or dimension list rebuilds in full. The multi-asset and its checks wrap them
for Dagster. Funnel definitions reach SQL by one route: the
`$funnels` parameter of `funnel_config.sql` and `funnel_exclusions.sql`, so event names and
filter values are data, never SQL text. Every other model reads the definitions from those
tables; the per-funnel models are only told which funnel (`$funnel`) and, per step, which step
(`$step_index`). A step is a *matcher*: its event name with its `where` (CONTRACT §3), numbered
here so that equal definitions share one number.

Models, in graph order (temp ones in `sql/intermediate/funnels/<name>.sql`, the contract tables
in `sql/marts/<name>.sql`):
- `funnel_config`, `funnel_exclusions`: one row per funnel and step, per funnel and exclusion
  (temp);
- `funnel_copies` (every user) or `funnel_copies_update` (the changed persons): the events the
  models read (temp view);
- `funnel_events`: the events of each matcher, filters applied (temp view; the filtered
  matchers are evaluated once, into the temp table `funnel_filtered_events`);
- `funnel_marks`: per-timestamp bookkeeping of matchers whose event another step of the funnel
  shares, or matched by a strict funnel (temp);
- `funnel_entries`: the events that start attempts (temp view);
- `funnel_occurrences`: the events a step can match (temp view);
- `funnel_match_tables`: the empty tables the next models fill (temp);
- `funnel_paths`, `funnel_advance`: ordered funnels with an event in two steps and strict
  funnels, their attempts through step 2, then one more step per run (into funnel_paths; each
  step's occurrences through the `step_occurrences` macro, `sql/macros/step_occurrences.sql`);
- `funnel_chain`: ordered funnels whose steps are all different events, the common case (into
  funnel_chained);
- `funnel_unordered`: unordered funnels (into funnel_unordered);
- `funnel_attempts`: the counted attempt per user and funnel (temp);
- `funnel_attempt_rows`: with the entry event's fields the dimensions read (temp);
- `funnel_user_attempts` (or `_update`): the internal table of every user's counted attempts;
- `funnel_steps`, `funnel_daily`: the contract tables.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.marts.changes import MartModels, Refresh, refresh_mart
from assets.marts.dimensions import needs_event_fields, segment_params
from pipelines.charts import new_figure, png_base64, save_png
from pipelines.formatting import duration, file_name, percent
from pipelines.previews import markdown_rows
from pipelines.resources import Warehouse
from pipelines.settings import LIFTED_FILTER_COLUMNS, Funnel, Settings, StepFilter
from pipelines.sql import run_sql_file
from pipelines.warehouse import WRITER_ASSET, prepare_base_schema

TABLES = ("funnel_steps", "funnel_daily", "funnel_user_attempts")
_MODELS = "intermediate/funnels"
# What one funnel build runs, in order (`_run_models`); the update swaps the first and the
# last-but-two for their _update versions. Listed for the fingerprint of mart_state.
FUNNELS = MartModels(
    "funnels",
    tuple(
        f"{_MODELS}/{name}.sql"
        for name in (
            "funnel_config",
            "funnel_exclusions",
            "funnel_copies",
            "funnel_events",
            "funnel_marks",
            "funnel_entries",
            "funnel_occurrences",
            "funnel_match_tables",
            "funnel_paths",
            "funnel_advance",
            "funnel_chain",
            "funnel_unordered",
            "funnel_attempts",
            "funnel_attempt_rows",
            "funnel_user_attempts",
        )
    )
    + ("marts/funnel_steps.sql", "marts/funnel_daily.sql"),
    (f"{_MODELS}/funnel_copies_update.sql", f"{_MODELS}/funnel_user_attempts_update.sql"),
    TABLES,
)


def build_funnels(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Rebuild `funnel_steps` and `funnel_daily` from `events` for every configured funnel (the
    reference); returns their row counts and the number of counted users."""
    refresh_funnels(conn, settings, full=True)
    return {table: _row_count(conn, table) for table in TABLES}


def update_funnels(conn: duckdb.DuckDBPyConnection, settings: Settings) -> Refresh:
    """Bring `funnel_steps` and `funnel_daily` up to date: the counted attempts of the persons
    whose events changed are recomputed from their events (funnel_user_attempts), and both
    tables are aggregated again from every person's kept attempt (no other event is read)."""
    return refresh_funnels(conn, settings)


def refresh_funnels(
    conn: duckdb.DuckDBPyConnection, settings: Settings, full: bool = False
) -> Refresh:
    """Update the funnels from the recorded changes, or rebuild them (always when `full`, and
    when the funnels, the zone or the dimensions changed since the last build)."""
    # The user keys and keyed_events, also on a warehouse no load has brought up to date yet;
    # dimension_values up to date (funnel_steps folds values into 'other' with it).
    prepare_base_schema(conn)
    params = {
        "funnels": funnel_parameters(settings.funnels),
        "timezone": settings.timezone,
        "dimensions": segment_params(conn, settings)["dimensions"],
        # funnel_attempts holds the entry event's platform and channel; a dimension on
        # another field reads the entry event (funnel_attempt_rows.sql).
        "entry_event_fields": needs_event_fields(settings, ("platform", "channel")),
    }

    def run(conn: duckdb.DuckDBPyConnection, applied: int | None) -> None:
        _run_models(conn, settings, params, applied)

    return refresh_mart(conn, FUNNELS, params, full=full, run=run)


def _run_models(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    params: dict[str, Any],
    applied: int | None,
) -> None:
    """The funnel models over every event (applied None) or over the events of the persons
    changed since `applied`, then the contract tables from the kept attempts."""
    for model in ("funnel_config", "funnel_exclusions"):
        run_sql_file(conn, f"{_MODELS}/{model}.sql", params)
    if applied is None:
        run_sql_file(conn, f"{_MODELS}/funnel_copies.sql")
    else:
        run_sql_file(
            conn,
            f"{_MODELS}/funnel_copies_update.sql",
            {"applied": applied, "event_fields": _reads_event_fields(settings, params)},
        )
    for model in (
        "funnel_events",
        "funnel_marks",
        "funnel_entries",
        "funnel_occurrences",
        "funnel_match_tables",
    ):
        run_sql_file(conn, f"{_MODELS}/{model}.sql")
    followed = [f for f in settings.funnels if f.order != "unordered" and not is_chainable(f)]
    for funnel in followed:
        for step_index in range(2, len(funnel.steps) + 1):
            model = "funnel_paths" if step_index == 2 else "funnel_advance"
            run_sql_file(
                conn, f"{_MODELS}/{model}.sql", {"funnel": funnel.name, "step_index": step_index}
            )
    for funnel in filter(is_chainable, settings.funnels):
        run_sql_file(conn, f"{_MODELS}/funnel_chain.sql", {"funnel": funnel.name})
    if any(f.order == "unordered" for f in settings.funnels):
        run_sql_file(conn, f"{_MODELS}/funnel_unordered.sql")
    run_sql_file(conn, f"{_MODELS}/funnel_attempts.sql", params)
    run_sql_file(conn, f"{_MODELS}/funnel_attempt_rows.sql", params)
    if applied is None:
        run_sql_file(conn, f"{_MODELS}/funnel_user_attempts.sql")
    else:
        run_sql_file(conn, f"{_MODELS}/funnel_user_attempts_update.sql")
    run_sql_file(conn, "marts/funnel_steps.sql", params)
    run_sql_file(conn, "marts/funnel_daily.sql")


def _reads_event_fields(settings: Settings, params: dict[str, Any]) -> bool:
    """Whether a funnel model reads an event's campaign, country or properties: a step's
    `where`, or a dimension on them (the entry event's fields)."""
    return params["entry_event_fields"] or any(any(f.filters) for f in settings.funnels)


def is_chainable(funnel: Funnel) -> bool:
    """Whether `funnel_chain.sql` computes this funnel: ordered, with every step a different
    event (so no event can fill two steps, whatever their filters)."""
    return funnel.order == "ordered" and len(set(funnel.steps)) == len(funnel.steps)


def funnel_parameters(funnels: tuple[Funnel, ...]) -> list[dict[str, Any]]:
    """The funnels as the `$funnels` parameter of `funnel_config.sql` and
    `funnel_exclusions.sql`: each step with its name, its matcher number and its filters."""
    matchers: dict[tuple, int] = {}

    def matcher(event: str, where: StepFilter) -> int:
        # Keys and values sorted: the same condition written in another order is one matcher.
        key = (event, tuple(sorted((k, tuple(sorted(v))) for k, v in where)))
        return matchers.setdefault(key, len(matchers) + 1)

    return [
        {
            "funnel": f.name,
            "steps": [
                {
                    "event": event,
                    "name": name,
                    "matcher": matcher(event, where),
                    "filters": [
                        {"key": key, "path": _json_pointer(key), "vals": list(values)}
                        for key, values in where
                    ],
                }
                for event, where, name in zip(f.steps, f.filters, f.step_names, strict=True)
            ],
            "window_seconds": f.window_seconds,
            "order_mode": f.order,
            "exclusions": [
                {
                    "event": x.event,
                    "matcher": matcher(x.event, ()),
                    "from_step": x.from_step,
                    "to_step": x.to_step,
                }
                for x in f.exclusions
            ],
        }
        for f in funnels
    ]


def _json_pointer(key: str) -> str | None:
    """Where a `where` key is read: a lifted column (None), else the `properties` key as a JSON
    pointer (RFC 6901: `~` and `/` escaped, so any key is read literally)."""
    if key in LIFTED_FILTER_COLUMNS:
        return None
    return "/" + key.replace("~", "~0").replace("/", "~1")


def increasing_step_rows(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    """Rows of `funnel_steps` or `funnel_daily` whose users exceed the previous step's users in
    the same funnel and segment (or entry date): (funnel, group, step_index, users, previous)."""
    return conn.execute(_INCREASES[table]).fetchall()


_INCREASES = {
    "funnel_steps": """
        select funnel, grp, step_index, users, previous
        from (
            select
                funnel,
                dimension || ':' || segment as grp,
                step_index,
                users,
                lag(users) over (partition by funnel, dimension, segment order by step_index)
                    as previous
            from funnel_steps
        )
        where users > previous
        order by all
    """,
    "funnel_daily": """
        select funnel, grp, step_index, users, previous
        from (
            select
                funnel,
                entry_date::varchar as grp,
                step_index,
                users,
                lag(users) over (partition by funnel, entry_date order by step_index) as previous
            from funnel_daily
        )
        where users > previous
        order by all
    """,
}


def _row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = conn.execute("select count(*) from query_table($table)", {"table": table}).fetchall()
    return rows[0][0]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "funnel_steps",
            deps=["events"],
            group_name="marts",
            kinds={"duckdb"},
            description=(
                "One row per funnel, segment (all / platform / channel) and step over the whole "
                "history: users reaching the step, conversion from the first and the previous "
                "step, median and mean seconds from the previous step (CONTRACT §3)."
            ),
        ),
        dg.AssetSpec(
            "funnel_daily",
            deps=["events"],
            group_name="marts",
            kinds={"duckdb"},
            description=(
                "Funnel users by the entry date of their counted attempt, per step "
                "(CONTRACT §3 funnel_daily)."
            ),
        ),
    ],
    **WRITER_ASSET,
)
def funnel_marts(warehouse: Warehouse) -> Iterator[dg.MaterializeResult]:
    """Every configured funnel (ordered, strict or unordered) from `events`: the furthest step of
    each user's attempts, counted once, at the earliest attempt reaching it."""
    settings = warehouse.settings()
    with warehouse.writer() as conn:
        refresh = update_funnels(conn, settings)
        counts = {table: _row_count(conn, table) for table in TABLES}
        summary = _funnel_summary(conn)
        daily_days = conn.execute(
            "select count(distinct (funnel, entry_date)) from funnel_daily"
        ).fetchall()[0][0]
    charts = {name: _save_chart(settings.reports_dir, name, rows) for name, rows in summary.items()}
    yield dg.MaterializeResult(
        asset_key="funnel_steps",
        metadata={
            "dagster/row_count": counts["funnel_steps"],
            "funnels": len(summary),
            "counted_users": counts["funnel_user_attempts"],
            **refresh.metadata(),
            "preview": dg.MetadataValue.md(_preview_markdown(summary, charts)),
            "charts": dg.MetadataValue.json({n: str(p) for n, (p, _) in charts.items()}),
        },
    )
    yield dg.MaterializeResult(
        asset_key="funnel_daily",
        metadata={"dagster/row_count": counts["funnel_daily"], "funnel_days": daily_days},
    )


@dg.asset_check(asset="funnel_steps", blocking=True)
def funnel_steps_never_increase(warehouse: Warehouse) -> dg.AssetCheckResult:
    """In every funnel and segment, users never increase from one step to the next."""
    return _never_increase_result(warehouse, "funnel_steps")


@dg.asset_check(asset="funnel_daily", blocking=True)
def funnel_daily_never_increase(warehouse: Warehouse) -> dg.AssetCheckResult:
    """In every funnel and entry date, users never increase from one step to the next."""
    return _never_increase_result(warehouse, "funnel_daily")


def _never_increase_result(warehouse: Warehouse, table: str) -> dg.AssetCheckResult:
    with warehouse.reader() as conn:
        rows = increasing_step_rows(conn, table)
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "increasing_steps": len(rows),
            "examples": dg.MetadataValue.json(
                [
                    {"funnel": f, "group": g, "step_index": k, "users": u, "previous": p}
                    for f, g, k, u, p in rows[:10]
                ]
            ),
        },
    )


def _funnel_summary(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """The 'all' rows of each funnel: (step_index, step, users, from_first, from_previous,
    median seconds)."""
    rows = conn.execute(
        """
        select funnel, step_index, step, users, conversion_from_first,
            conversion_from_previous, median_seconds_from_previous
        from funnel_steps where dimension = 'all'
        order by funnel, step_index
        """
    ).fetchall()
    summary: dict[str, list[tuple]] = {}
    for funnel, *row in rows:
        summary.setdefault(funnel, []).append(tuple(row))
    return summary


def _preview_markdown(summary: dict[str, list[tuple]], charts: dict[str, tuple[Path, str]]) -> str:
    parts = []
    for name, rows in summary.items():
        table = markdown_rows(
            ["#", "step", "users", "% of first", "% of previous", "median time from previous"],
            [
                [
                    index,
                    step,
                    f"{users:,}",
                    percent(first, missing="–"),
                    percent(previous, missing="–"),
                    duration(median),
                ]
                for index, step, users, first, previous, median in rows
            ],
            right_aligned=(
                "#",
                "users",
                "% of first",
                "% of previous",
                "median time from previous",
            ),
        )
        _, encoded = charts[name]
        parts.append(f"### {name}\n\n{table}\n\n![{name}](data:image/png;base64,{encoded})\n")
    return "\n".join(parts) or "No funnels configured."


def _save_chart(reports_dir: Path, name: str, rows: list[tuple]) -> tuple[Path, str]:
    """A small bar chart of users per step, saved as `reports/assets/funnel_<name>.png`;
    returns its path and its base64 text for the Markdown preview."""
    labels = [f"{index}. {step}" for index, step, *_ in rows]
    users = [row[2] for row in rows]
    figure = new_figure(5, 2.6, dpi=80)
    axes = figure.subplots()
    bars = axes.barh(labels[::-1], users[::-1], color="#4c72b0")
    for bar, row in zip(bars, rows[::-1], strict=True):
        axes.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {percent(row[3], missing='–')}",
            va="center",
            fontsize=8,
        )
    axes.set_title(f"Funnel {name}: users per step", fontsize=9)
    axes.tick_params(labelsize=8)
    axes.margins(x=0.2)
    path = reports_dir / "assets" / f"funnel_{file_name(name)}.png"
    png = save_png(figure, path, stamp_software=True)
    return path, png_base64(png)


def unknown_step_events(
    conn: duckdb.DuckDBPyConnection, funnels: Sequence[Funnel]
) -> list[tuple[str, str, list[str]]]:
    """Funnel steps whose event name no event has (a typo like `page_veiw` makes a funnel show
    0 everywhere): (funnel, step event, the closest existing event names by difflib)."""
    names = [name for (name,) in conn.execute("select distinct event from events").fetchall()]
    known = set(names)
    found = []
    for funnel in funnels:
        for step in funnel.steps:
            event = getattr(step, "event", step)  # a step is an event name or has one
            if event not in known:
                found.append((funnel.name, event, difflib.get_close_matches(event, names, n=3)))
    return found


def unknown_step_sentence(funnel: str, event: str, closest: list[str]) -> str:
    hint = f"closest existing: {', '.join(closest)}" if closest else "no similar event name"
    return f'funnel "{funnel}": no event is named "{event}" ({hint}); check the step\'s spelling.'


@dg.asset_check(asset="funnel_steps")
def funnel_steps_name_existing_events(context, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every funnel step names an event that occurs in `events` (WARN: a misspelled step makes
    the funnel 0 from that step on, without any error)."""
    # `context` unannotated: with postponed annotations Dagster cannot read its type.
    with warehouse.reader() as conn:
        unknown = unknown_step_events(conn, warehouse.settings().funnels)
    sentences = [unknown_step_sentence(*row) for row in unknown]
    for sentence in sentences:
        context.log.warning(sentence)
    return dg.AssetCheckResult(
        passed=not unknown,
        severity=dg.AssetCheckSeverity.WARN,
        description=" ".join(sentences) or "Every step names an existing event.",
        metadata={
            "unknown_steps": dg.MetadataValue.json(
                [{"funnel": f, "step": e, "closest": c} for f, e, c in unknown]
            )
        },
    )
