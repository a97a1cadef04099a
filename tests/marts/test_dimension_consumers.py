"""The configured dimensions downstream of daily_metrics (CONTRACT §3 Breakdowns): the report's
breakdown tables, the anomaly scorer's segments and `ask`'s segment lookup read whatever
dimensions the marts were built with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from conftest import insert_events
from test_dimensions import dim_ev

from assets.anomalies.scoring import score_anomalies
from assets.corpus.questions import Catalog, parse_question
from assets.marts.metrics import build_daily_metrics
from assets.marts.sessions_users import build_sessions, build_users
from assets.reports.build import Period
from assets.reports.trends import breakdown_section
from pipelines import warehouse
from pipelines.settings import AnomalySettings, Settings

DIMS = ("country", "properties.app_version")
DAY = dt.date(2026, 3, 10)


@pytest.fixture
def conn(tmp_path: Path):
    events = []
    for offset in range(21):
        day = DAY - dt.timedelta(days=20 - offset)
        for n, (country, version) in enumerate(
            [("NL", 3), ("NL", "3"), ("DE", 2), ("US", 2), ("FR", None), (None, 1)]
        ):
            properties = {} if version is None else {"app_version": version}
            events.append(
                dim_ev(
                    f"e{offset}-{n}",
                    f"u{n}",
                    "page_view",
                    f"{day} 10:0{n}:00",
                    country=country,
                    properties=properties,
                )
            )
    connection = warehouse.connect(tmp_path / "w.duckdb")
    insert_events(connection, events)
    settings = Settings(home=tmp_path, dimensions=DIMS, dimension_limit=2)
    build_sessions(connection, settings)
    build_users(connection, settings)
    build_daily_metrics(connection, settings)
    yield connection
    connection.close()


def test_report_breakdown_has_a_table_per_configured_dimension(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    period = Period("daily", DAY.isoformat(), DAY, DAY)
    section = breakdown_section(conn, period, "USD", DIMS)
    assert section.title == "By country and properties.app_version"
    assert [table.columns[0] for table in section.tables] == ["Country", "app_version"]
    countries = {row[0]: row[1] for row in section.tables[0].rows}
    # NL (2 users) and DE (1, before FR and US by value) kept; FR and US are 'other'.
    assert countries == {"NL": "2", "DE": "1", "other": "2", "unknown": "1"}
    versions = {row[0]: row[1] for row in section.tables[1].rows}
    # 3 and "3" are one value; "2" and "3" (2 users each) kept, 1 is 'other'.
    assert versions == {"3": "2", "2": "2", "other": "1", "unknown": "1"}
    assert any("'other'" in note for note in section.notes)


def test_anomalies_score_every_segment_of_the_configured_dimensions(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    daily = conn.sql("select * from daily_metrics").df()
    scored = score_anomalies(daily, AnomalySettings(min_history_days=7))
    segments = set(zip(scored["dimension"], scored["segment"], strict=True))
    assert {("country", "NL"), ("country", "other"), ("country", "unknown")} <= segments
    assert ("properties.app_version", "3") in segments
    assert not any(dimension in ("platform", "channel") for dimension, _ in segments)


def test_ask_finds_a_segment_in_whatever_dimension_holds_it() -> None:
    catalog = Catalog(
        DAY - dt.timedelta(days=20),
        DAY,
        {"country": ("DE", "NL", "other", "unknown"), "properties.app_version": ("2", "3")},
    )
    question = parse_question("How many active users from NL yesterday?", catalog, DAY)
    assert question.segment == ("country", "NL")
    by_version = parse_question("Active users by app version last week", catalog, DAY)
    assert by_version.dimension == "properties.app_version"
