"""The Dagster UI and its automation (issue 6).

Fast: the instance config `eventpulse ui` writes, the schedules' partitions and the landing
sensor's decisions.

Slow, end to end in a real browser: `dagster dev` started as `eventpulse ui` starts it, the asset
catalog and graph in headless Chromium, a 3-day backfill through GraphQL, the report it writes
opened as a file, and the landing sensor reacting to a new arrival folder. A few minutes on two
cores, and part of `make test`. Skipped only when Debian's Chromium is missing (`apt-get install
-y chromium`; `.ci/run` installs it): Playwright never downloads a browser here. Screenshots are
kept under the test's tmp dir (`.../ui0/screenshots`). Schedules and the sensor start stopped
(EVENTPULSE_AUTOMATION=stopped) so the backfill runs alone; the sensor test turns the sensor on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipelines.resources import Warehouse
from pipelines.schedules import AUTOMATION_ENV, daily_pipeline_schedule, weekly_report_schedule
from pipelines.sensors import SETTLE_SECONDS, LandingFolder, changed_folders, landing_sensor
from pipelines.settings import load_settings
from pipelines.ui import (
    PROJECT_ROOT,
    default_sigint,
    stop_process_group,
    ui_command,
    ui_env,
    write_instance_config,
)

CHROMIUM = Path("/usr/bin/chromium")
# The flags that work on this machine: no sandbox as root, and no background networking (the
# network is closed, and Chromium's own connections would be refused many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TODAY = dt.datetime.now(dt.UTC).date()
# Arrival days well inside the daily partitions (which end tomorrow) but in the past.
BACKFILL_DAYS = [TODAY - dt.timedelta(days=n) for n in (6, 5, 4)]
SENSOR_DAY = TODAY - dt.timedelta(days=3)
FUNNEL_STEPS = ("page_view", "signup", "add_to_cart", "purchase")
STARTUP_SECONDS = 300
RUN_SECONDS = 900  # one backfill or sensor run: about 4 min on two busy cores


@dataclass
class DagsterDev:
    """A running `dagster dev` on a free localhost port, with its home folder."""

    url: str
    process: subprocess.Popen
    log: Path
    home: Path
    shots: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install -y chromium); "
            "Playwright may not download its own browser here."
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    for day in BACKFILL_DAYS:
        write_events(home / "landing" / "events", day)
    config = home / "eventpulse.yaml"
    config.write_text(f"start_date: {BACKFILL_DAYS[0].isoformat()}\n")
    settings = load_settings(config_path=config, home=home)
    # The instance belongs to this test alone, whatever DAGSTER_HOME the caller has.
    environ = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    environ["DAGSTER_HOME"] = str(home / "dagster")
    env = ui_env(settings, environ)
    env[AUTOMATION_ENV] = "stopped"
    port = free_port()
    log = root / "dagster-dev.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            ui_command(settings, port=port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server
            # As `eventpulse ui` starts it: dagster dev maps SIGTERM to its SIGINT handler, so
            # one inherited ignored (a suite run in the background of a script) would leave it
            # deaf to both, and the teardown would wait out its timeout.
            preexec_fn=default_sigint,
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", process, log, home, root / "screenshots")
    server.shots.mkdir()
    try:
        wait_for_code_location(server)
        yield server
    finally:
        stop_process_group(process)  # as `eventpulse ui` stops it: SIGINT, then TERM, KILL


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


# --- fast: instance config, schedules, sensor decisions ---------------------------------------


def test_instance_config_limits_the_warehouse_pool_and_queues_runs(tmp_path: Path) -> None:
    path = write_instance_config(tmp_path / "dagster")

    instance = dg.DagsterInstance.from_config(str(path.parent))
    try:
        concurrency = instance.get_settings("concurrency")
        assert concurrency["pools"]["default_limit"] == 1
        assert concurrency["runs"]["max_concurrent_runs"] == 1
        assert instance.get_settings("telemetry") == {"enabled": False}
    finally:
        instance.dispose()


def test_instance_config_leaves_a_users_own_dagster_yaml_alone(tmp_path: Path) -> None:
    own = tmp_path / "dagster.yaml"
    own.write_text("telemetry:\n  enabled: true\n")

    write_instance_config(tmp_path)

    assert own.read_text() == "telemetry:\n  enabled: true\n"


def test_ui_env_points_dagster_at_absolute_homes(tmp_path: Path) -> None:
    config = tmp_path / "eventpulse.yaml"
    config.write_text("session_gap_seconds: 900\n")
    settings = load_settings(config_path=config, home=tmp_path / "home")

    env = ui_env(settings, {"PATH": "/usr/bin"})

    assert env["DAGSTER_HOME"] == str((tmp_path / "home" / "dagster").resolve())
    assert env["EVENTPULSE_HOME"] == str((tmp_path / "home").resolve())
    assert env["EVENTPULSE_CONFIG"] == str(config.resolve())
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()
    command = ui_command(settings, port=3333)
    assert command[1:4] == ["-m", "dagster", "dev"]
    assert command[command.index("--workspace") + 1] == str(PROJECT_ROOT / "workspace.yaml")
    assert command[-2:] == ["--port", "3333"]


def test_daily_schedule_runs_the_pipeline_for_yesterday() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 10, 0, 30, tzinfo=dt.UTC)
    )
    request = daily_pipeline_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-03-09"
    assert daily_pipeline_schedule.job_name == "pipeline"


def test_weekly_schedule_reports_the_week_that_just_ended() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.UTC)  # a Monday
    )
    request = weekly_report_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-03-09"


def test_sensor_runs_a_new_folder_once_and_again_when_its_files_change(tmp_path: Path) -> None:
    home = tmp_path / "home"
    landing = home / "landing" / "events"
    path = write_events(landing, dt.date(2026, 3, 2))
    _age(path)

    first = evaluate_sensor(home, cursor=None)
    (request,) = first.run_requests
    assert request.partition_key == "2026-03-02"
    assert evaluate_sensor(home, cursor=first.cursor).run_requests == []

    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    _age(path, seconds=30)
    (again,) = evaluate_sensor(home, cursor=first.cursor).run_requests
    assert again.partition_key == "2026-03-02"
    assert again.run_key != request.run_key


def test_sensor_groups_consecutive_new_days_into_one_range_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for day in (1, 2, 3, 7):
        _age(write_events(home / "landing" / "events", dt.date(2026, 3, day)))

    requests = evaluate_sensor(home, cursor=None).run_requests

    assert [(r.partition_key, r.partition_key_range) for r in requests] == [
        (None, dg.PartitionKeyRange("2026-03-01", "2026-03-03")),
        ("2026-03-07", None),
    ]


def test_sensor_skips_folders_already_loaded_and_waits_for_files_being_written() -> None:
    loaded, fresh, busy = (
        LandingFolder(dt.date(2026, 3, d), f"print{d}", 1_000.0) for d in (1, 2, 3)
    )
    busy = LandingFolder(busy.day, busy.fingerprint, 1_998.0)
    loaded_at = {loaded.day: 1_500.0}  # loaded after its files last changed

    to_run, cursor = changed_folders([loaded, fresh, busy], {}, loaded_at, now=2_000.0)

    assert to_run == [fresh]
    assert cursor == {"2026-03-01": "print1", "2026-03-02": "print2"}  # busy: next tick


def evaluate_sensor(home: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"warehouse": Warehouse(home=str(home))}
    )
    result = landing_sensor(context)
    if isinstance(result, dg.SkipReason):
        return dg.SensorResult(run_requests=[], cursor=cursor)
    return result


def _age(path: Path, seconds: float = 60) -> None:
    """Backdate a file: the sensor waits for files changed in the last few seconds."""
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


# --- slow: the UI in a browser -----------------------------------------------------------------


@pytest.mark.slow
def test_the_ui_lists_every_asset_in_the_catalog_and_its_group_graph(
    dagster: DagsterDev, browser: Any
) -> None:
    nodes = [n for n in asset_nodes(dagster) if n["isExecutable"]]
    names = sorted("/".join(n["assetKey"]["path"]) for n in nodes)
    assert {"events", "daily_report", "weekly_report"} <= set(names)
    location = code_location(dagster)
    # Tall enough that the catalog's virtualised list renders every row.
    page = browser.new_page(viewport={"width": 1600, "height": 2400})
    try:
        page.goto(f"{dagster.url}/assets", wait_until="networkidle")
        page.wait_for_selector("text=daily_report", timeout=60_000)
        page.screenshot(path=dagster.shots / "asset-catalog.png")
        assert [n for n in names if n not in page.inner_text("body")] == []
        for group in sorted({n["groupName"] for n in nodes}):
            members = sorted(
                "/".join(n["assetKey"]["path"]) for n in nodes if n["groupName"] == group
            )
            page.goto(f"{dagster.url}/locations/{location}/asset-groups/{group}")
            page.wait_for_selector(f"text={members[0]}", timeout=60_000)
            page.screenshot(path=dagster.shots / f"asset-graph-{group}.png")
            assert [m for m in members if m not in page.inner_text("body")] == [], group
        page.goto(f"{dagster.url}/automation")
        page.wait_for_selector("text=landing_sensor", timeout=60_000)
        page.screenshot(path=dagster.shots / "automation.png")
        text = page.inner_text("body")
        for automation in ("daily_pipeline_schedule", "weekly_report_schedule", "landing_sensor"):
            assert automation in text
    finally:
        page.close()


@pytest.mark.slow
def test_three_day_backfill_through_graphql_materializes_every_partition(
    dagster: DagsterDev,
) -> None:
    days = [d.isoformat() for d in BACKFILL_DAYS]
    selection = report_lineage(asset_nodes(dagster))
    backfill_id = launch_backfill(dagster, selection, days)

    status = wait_for_backfill(dagster, backfill_id)

    assert status == "COMPLETED_SUCCESS", dagster.log_tail()
    materialized = materialized_partitions(dagster, "events")
    assert set(days) <= materialized
    assert set(days) <= materialized_partitions(dagster, "daily_report")
    with read_warehouse(dagster.home) as conn:
        per_day = dict(
            conn.execute(
                "select arrival_date, count(*) from events group by 1 order by 1"
            ).fetchall()
        )
    assert {d.isoformat(): n for d, n in per_day.items()} == {
        d: events_written(dagster.home, dt.date.fromisoformat(d)) for d in days
    }


@pytest.mark.slow
def test_the_generated_report_renders_with_its_figures(dagster: DagsterDev, browser: Any) -> None:
    report = dagster.home / "reports" / "daily" / f"{BACKFILL_DAYS[-1].isoformat()}.html"
    assert report.exists(), "run the backfill test first: it writes the report"
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(report.as_uri(), wait_until="load")
        page.screenshot(path=dagster.shots / "daily-report.png", full_page=True)
        headline_rows = page.locator("#headline table tbody tr")
        assert headline_rows.count() == 6
        assert "Active users" in headline_rows.first.inner_text()
        funnel = page.locator("#funnels img").first
        assert funnel.evaluate("img => img.complete && img.naturalWidth > 0")
        assert page.locator("#anomalies").is_visible()
        assert page.locator("#anomalies h2").inner_text() == "Anomalies"
        broken = page.evaluate(
            "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))"
        )
        assert broken == []
        links = page.evaluate(
            "() => [...document.querySelectorAll('a[href], img[src], link[href]')]"
            ".map(e => e.getAttribute('href') || e.getAttribute('src'))"
        )
        for link in links:
            assert (report.parent / link).exists(), link
    finally:
        page.close()


@pytest.mark.slow
def test_a_new_arrival_folder_triggers_the_landing_sensor(dagster: DagsterDev) -> None:
    write_events(dagster.home / "landing" / "events", SENSOR_DAY)
    time.sleep(SETTLE_SECONDS)  # the sensor leaves a folder alone while it is being written
    selector = sensor_selector(dagster, "landing_sensor")
    started = dagster.graphql(
        """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
            __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }""",
        {"selector": selector},
    )["startSensor"]
    assert started["__typename"] == "Sensor", started

    run = wait_for_sensor_run(dagster, selector)

    assert run["status"] == "SUCCESS", dagster.log_tail()
    with read_warehouse(dagster.home) as conn:
        (loaded,) = conn.execute(
            "select count(*) from events where arrival_date = ?", [SENSOR_DAY]
        ).fetchone()
    assert loaded == events_written(dagster.home, SENSOR_DAY)


# --- the landing zone --------------------------------------------------------------------------


def write_events(landing: Path, day: dt.date, users: int = 24) -> Path:
    """One JSON-lines file of a small shop's day: returning and new users view pages, fewer
    sign up, add to cart and buy."""
    folder = landing / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    first_user = 8 * (day - BACKFILL_DAYS[0]).days  # a third of each day's users are new
    lines = []
    for n, user in enumerate(range(first_user, first_user + users)):
        start = dt.datetime.combine(day, dt.time(8), dt.UTC) + dt.timedelta(minutes=17 * n)
        steps = FUNNEL_STEPS[: 1 + (user + day.day) % len(FUNNEL_STEPS)]
        for position, event in enumerate(steps):
            properties: dict[str, Any] = {
                "platform": ("web", "ios", "android")[user % 3],
                "channel": ("organic", "ads")[user % 2],
            }
            if event == "purchase":
                properties["revenue"] = 10.0 + user
            record = {
                "user_id": f"u{user:03d}",
                "event": event,
                "timestamp": (start + dt.timedelta(minutes=3 * position)).isoformat(),
                "properties": properties,
            }
            lines.append(json.dumps(record))
    path = folder / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def events_written(home: Path, day: dt.date) -> int:
    return sum(
        len(p.read_text().splitlines())
        for p in (home / "landing" / "events" / f"date={day}").glob("*.jsonl")
    )


# --- Dagster through GraphQL -------------------------------------------------------------------


def wait_for_code_location(server: DagsterDev) -> None:
    """Until the webserver answers and the project's code location has loaded."""
    deadline = time.monotonic() + STARTUP_SECONDS
    query = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"dagster dev exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            entries = server.graphql(query)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        else:
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            errors = [
                e["locationOrLoadError"]["message"]
                for e in loaded
                if e["locationOrLoadError"]["__typename"] == "PythonError"
            ]
            assert not errors, f"the code location failed to load: {errors[0]}"
            if entries and len(loaded) == len(entries):
                return
            last = str(entries)
        time.sleep(2)
    pytest.fail(f"dagster dev not ready after {STARTUP_SECONDS} s ({last}):\n{server.log_tail()}")


def code_location(server: DagsterDev) -> str:
    query = (
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }"
    )
    (repository,) = server.graphql(query)["repositoriesOrError"]["nodes"]
    return repository["location"]["name"]


def asset_nodes(server: DagsterDev) -> list[dict[str, Any]]:
    query = """{ assetNodes { assetKey { path } groupName isPartitioned isExecutable
        dependencyKeys { path } } }"""
    return server.graphql(query)["assetNodes"]


def report_lineage(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events`, `daily_report` and every executable asset between them: what the report needs
    from a new arrival day (and nothing slower, such as the embedding of the corpus)."""
    parents = {
        tuple(n["assetKey"]["path"]): [tuple(k["path"]) for k in n["dependencyKeys"]] for n in nodes
    }

    def ancestors(key: tuple[str, ...]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        stack = [key]
        while stack:
            for parent in parents.get(stack.pop(), []):
                if parent not in found:
                    found.add(parent)
                    stack.append(parent)
        return found

    report = ("daily_report",)
    needed = {k for k in ancestors(report) | {report} if ("events",) in ancestors(k) | {k}}
    return [n for n in nodes if tuple(n["assetKey"]["path"]) in needed and n["isExecutable"]]


def launch_backfill(server: DagsterDev, assets: list[dict[str, Any]], days: list[str]) -> str:
    """An asset backfill of `days` for the partitioned assets, plus the unpartitioned ones.

    Explicit per asset (`partitionsByAssets`): with `partitionNames`, Dagster follows the
    partitions only through partitioned parents and would drop `daily_report`, which sits
    behind the unpartitioned marts.
    """
    mutation = """mutation($params: LaunchBackfillParams!) {
        launchPartitionBackfill(backfillParams: $params) {
            __typename
            ... on LaunchBackfillSuccess { backfillId }
            ... on Error { message }
            ... on PythonError { message stack } } }"""
    span = {"range": {"start": days[0], "end": days[-1]}}
    params = {
        "partitionsByAssets": [
            {
                "assetKey": {"path": node["assetKey"]["path"]},
                "partitions": span if node["isPartitioned"] else None,
            }
            for node in assets
        ],
        "title": f"browser test: {len(days)} days",
    }
    result = server.graphql(mutation, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def wait_for_backfill(server: DagsterDev, backfill_id: str) -> str:
    query = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
        __typename ... on PartitionBackfill { status error { message }
            runs { runId status } } ... on PythonError { message } } }"""
    deadline = time.monotonic() + RUN_SECONDS
    backfill: dict[str, Any] = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill.get("status") in {
            "COMPLETED_SUCCESS",
            "COMPLETED_FAILED",
            "FAILED",
            "CANCELED",
        }:
            return backfill["status"]
        time.sleep(3)
    pytest.fail(f"backfill not finished after {RUN_SECONDS} s: {backfill}\n{server.log_tail()}")


def materialized_partitions(server: DagsterDev, asset: str) -> set[str]:
    query = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
        ... on AssetNode { assetPartitionStatuses { __typename
            ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }"""
    node = server.graphql(query, {"key": {"path": [asset]}})["assetNodeOrError"]
    keys: set[str] = set()
    for span in node["assetPartitionStatuses"]["ranges"]:
        if span["status"] == "MATERIALIZED":
            start = dt.date.fromisoformat(span["startKey"])
            end = dt.date.fromisoformat(span["endKey"])
            keys |= {
                (start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)
            }
    return keys


def sensor_selector(server: DagsterDev, name: str) -> dict[str, str]:
    query = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        name location { name } sensors { name } } } } }"""
    for repository in server.graphql(query)["repositoriesOrError"]["nodes"]:
        if name in {s["name"] for s in repository["sensors"]}:
            return {
                "repositoryName": repository["name"],
                "repositoryLocationName": repository["location"]["name"],
                "sensorName": name,
            }
    pytest.fail(f"no sensor named {name}")


def wait_for_sensor_run(server: DagsterDev, selector: dict[str, str]) -> dict[str, Any]:
    runs_query = """query($name: String!) { runsOrError(filter: {tags: [
        {key: "dagster/sensor_name", value: $name}]}) { ... on Runs { results { runId status
        tags { key value } } } } }"""
    ticks_query = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
        ... on Sensor { sensorState { ticks(limit: 5) { status skipReason error { message } } } } } }"""
    deadline = time.monotonic() + RUN_SECONDS
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = server.graphql(runs_query, {"name": selector["sensorName"]})["runsOrError"][
            "results"
        ]
        finished = [r for r in runs if r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}]
        if runs and len(finished) == len(runs):
            return runs[0]
        time.sleep(3)
    ticks = server.graphql(ticks_query, {"selector": selector})["sensorOrError"]
    pytest.fail(
        f"no finished sensor run after {RUN_SECONDS} s: {runs} {ticks}\n{server.log_tail()}"
    )


# --- processes and files -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def read_warehouse(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only snapshot of the published warehouse (a copy: the UI's runs may publish)."""
    copy = home.parent / "warehouse-snapshot.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", copy)
    conn = duckdb.connect(str(copy), read_only=True)
    try:
        yield conn
    finally:
        conn.close()
        copy.unlink()
