"""A misspelled funnel step (issue 16 item 8): the run warns and a WARN asset check names the
step and the closest existing event names."""

from __future__ import annotations

import datetime as dt
import difflib
import logging
from pathlib import Path

import dagster as dg
from conftest import insert_events

from assets.marts.funnels import (
    funnel_marts,
    funnel_steps_name_existing_events,
    unknown_step_events,
)
from pipelines import warehouse
from pipelines.resources import Warehouse
from pipelines.settings import Funnel

CONFIG = """
funnels:
  - name: checkout
    steps: [page_veiw, add_to_cart, purchase]
  - name: fine
    steps: [page_view, purchase]
"""
EVENTS = ["page_view", "page_leave", "add_to_cart", "purchase", "signup"]


def _load(home: Path) -> None:
    at = dt.datetime(2026, 3, 2, 10)
    with warehouse.writer(home) as conn:
        insert_events(
            conn,
            [
                {"user_id": f"u{n}", "event": name, "ts": at + dt.timedelta(minutes=n)}
                for n, name in enumerate(EVENTS)
            ],
        )


def test_unknown_steps_are_named_with_the_closest_events(home: Path) -> None:
    _load(home)
    funnels = (
        Funnel("checkout", ("page_veiw", "add_to_cart", "purchse")),
        Funnel("fine", ("page_view", "purchase")),
    )
    with warehouse.reader(home) as conn:
        unknown = unknown_step_events(conn, funnels)
    # The reference: difflib over the distinct names, as a person would pick them.
    assert unknown == [
        ("checkout", "page_veiw", difflib.get_close_matches("page_veiw", EVENTS, n=3)),
        ("checkout", "purchse", ["purchase"]),
    ]
    assert unknown[0][2][0] == "page_view"


def test_the_warn_check_fails_naming_the_step_and_the_run_log_warns(home: Path) -> None:
    config = home / "eventpulse.yaml"
    config.write_text(CONFIG)
    _load(home)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [funnel_marts, funnel_steps_name_existing_events],
        resources={"warehouse": Warehouse(home=str(home), config_path=str(config))},
        instance=instance,
    )
    assert result.success  # a warning, not a failure
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert 'no event is named "page_veiw"' in check.description
    assert "closest existing: page_view" in check.description
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]
    assert any('no event is named "page_veiw"' in message for message in warnings)
