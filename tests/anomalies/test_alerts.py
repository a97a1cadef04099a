"""Incidents and alerts (CONTRACT §3 `anomalies`, §1 `alerts`): flagged rows grouped by cause,
each new incident POSTed once to receivers on 127.0.0.1 (one that takes it, one that answers
500, one that hangs), remembered in the warehouse, and the URL never written anywhere."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_anomalies import _daily_metrics, _with_rates

from assets.anomalies.alerts import (
    Delivery,
    deliver,
    delivery_journal,
    payload,
    pending_incidents,
    post,
    record_deliveries,
    unrecorded,
)
from assets.anomalies.incidents import group_incidents
from assets.anomalies.scoring import score_anomalies
from pipelines import warehouse
from pipelines.demo import generate
from pipelines.errors import EventpulseError
from pipelines.settings import parse_settings

HANG_SECONDS = 3.0  # how long the hanging receiver holds a request; the client gives up first
CLIENT_TIMEOUT = 0.5


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    hang = 0.0

    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.hang:
            time.sleep(self.hang)
        self.server.received.append(body)  # type: ignore[attr-defined]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up
            self.send_response(self.status)
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def receiver(status: int = 200, hang: float = 0.0) -> Iterator[tuple[str, list[dict]]]:
    """An HTTP receiver on 127.0.0.1 (a free port) for the block; yields (url, bodies)."""
    handler = type("Handler", (_Receiver,), {"status": status, "hang": hang})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _outage_day() -> pd.DataFrame:
    """Scored rows with two causes on the last day: android purchasers fall to 0 (a dip that
    moves the total), and ios sessions and events triple (a spike)."""
    rng = np.random.default_rng(7)
    frame = _daily_metrics(rng, days=42, segments={"android": 900, "ios": 400, "web": 300})
    last = frame["metric_date"] == frame["metric_date"].max()
    android = last & (frame["segment"] == "android")
    lost = frame.loc[android, "purchasers"].sum()
    frame.loc[android, ["purchasers", "revenue"]] = 0
    frame.loc[last & (frame["segment"] == "all"), "purchasers"] -= lost
    ios = last & (frame["segment"] == "ios")
    extra = frame.loc[ios, ["sessions", "events"]].to_numpy() * 2
    frame.loc[ios, ["sessions", "events"]] *= 3
    frame.loc[last & (frame["segment"] == "all"), ["sessions", "events"]] += extra
    return score_anomalies(_with_rates(frame))


def test_flagged_rows_of_one_cause_form_one_incident() -> None:
    scored = _outage_day()
    day = scored["metric_date"].max()
    flagged = scored[scored["is_anomaly"] & (scored["metric_date"] == day)]
    incidents = group_incidents(scored[scored["metric_date"] == day])
    # Every flagged row is in exactly one incident.
    assert len(incidents) == len(flagged)
    assert not incidents.duplicated(["metric", "dimension", "segment"]).any()
    by_id = {
        i: set(zip(g["metric"], g["segment"], strict=True))
        for i, g in incidents.groupby("incident_id")
    }
    dip = next(rows for rows in by_id.values() if ("purchasers", "android") in rows)
    spike = next(rows for rows in by_id.values() if ("sessions", "ios") in rows)
    assert dip is not spike
    assert ("purchasers", "all") in dip and ("sessions", "all") in spike
    assert {segment for _, segment in dip} <= {"android", "all"}
    assert {segment for _, segment in spike} <= {"ios", "all"}
    lead = incidents[incidents["is_lead"]].set_index("incident_id")
    assert all(lead.loc[i, "dimension"] == "all" for i in by_id)
    summary = lead.loc[next(i for i in by_id if by_id[i] is dip), "summary"]
    assert summary.startswith(
        f"Anomaly on {day.date().isoformat()}: a dip in purchasers for all users"
    )
    assert "purchasers for platform=android (\u2212100%)" in summary


def test_payload_is_the_contract_json() -> None:
    incidents = group_incidents(_outage_day())
    first = incidents[incidents["incident_id"] == incidents["incident_id"].iloc[0]]
    body = payload(first, Path("/home/reports"))
    assert set(body) == {"text", "incident_id", "metric_date", "rows", "report"}
    assert body["report"] == f"/home/reports/daily/{body['metric_date']}.html"
    assert body["text"].startswith("Anomaly on ")
    assert len(body["rows"]) == len(first)
    assert set(body["rows"][0]) == {
        "metric",
        "dimension",
        "segment",
        "value",
        "expected",
        "score",
        "direction",
    }
    json.dumps(body)  # plain JSON values only


def test_post_to_receivers_that_take_fail_and_hang() -> None:
    body = {"text": "hello"}
    with receiver() as (url, received):
        assert post(url, body, CLIENT_TIMEOUT) is None
        assert received == [body]
    with receiver(status=500) as (url, _):
        assert post(url, body, CLIENT_TIMEOUT) == "HTTP 500"
    with receiver(hang=HANG_SECONDS) as (url, _):
        started = time.monotonic()
        assert post(url, body, CLIENT_TIMEOUT) == "timed out after 0.5 s"
        assert time.monotonic() - started < HANG_SECONDS
    with receiver() as (url, _):
        closed = url  # nothing listens there once the block ends
    assert post(closed, body, CLIENT_TIMEOUT).startswith("connection failed")


def _alert_run(home: Path, url: str, publish: bool = True) -> list[Delivery]:
    """What the anomaly_alerts asset does; `publish=False`: the run fails after posting, so
    its warehouse changes are never published (a writer block that raises is discarded)."""
    journal = delivery_journal(home)
    with warehouse.reader(home) as conn:
        pending = pending_incidents(conn, journal)
        lost = unrecorded(conn, journal)
    deliveries = deliver(url, pending, home / "reports", CLIENT_TIMEOUT, journal)
    if deliveries or lost:
        with contextlib.suppress(_RunFailed), warehouse.writer(home) as conn:
            record_deliveries(conn, lost + deliveries)
            if not publish:
                raise _RunFailed
    return deliveries


class _RunFailed(Exception):
    pass


def _store_incidents(home: Path) -> int:
    incidents = group_incidents(_outage_day())
    with warehouse.writer(home) as conn:
        conn.register("frame", incidents)
        conn.execute("create table anomaly_incidents as select * from frame")
        conn.unregister("frame")
    return incidents["incident_id"].nunique()


def test_a_run_that_fails_after_posting_never_posts_again(home: Path) -> None:
    """The run posts every incident, then fails before publishing: the warehouse forgets the
    deliveries, the journal does not; the next run posts nothing and records them."""
    count = _store_incidents(home)
    with receiver() as (url, received):
        assert len(_alert_run(home, url, publish=False)) == count
        with warehouse.reader(home) as conn:
            assert not conn.sql(
                "select * from duckdb_tables() where table_name = 'alert_deliveries'"
            ).fetchall()
        assert _alert_run(home, url) == []
        assert len(received) == count
    with warehouse.reader(home) as conn:
        stored = conn.sql("select incident_id, attempts, delivered_at from alert_deliveries").df()
    assert len(stored) == count and stored["delivered_at"].notna().all()
    assert set(stored["attempts"]) == {1}
    # A line cut short by a crash in the middle of writing it is skipped, not an error.
    with open(delivery_journal(home), "a") as journal:
        journal.write('{"incident_id": "cut')
    with receiver() as (url, received):
        assert _alert_run(home, url) == [] and received == []


def test_each_incident_is_delivered_once_and_a_failure_is_retried(home: Path) -> None:
    count = _store_incidents(home)
    assert count >= 2

    def run(url: str) -> list:
        return _alert_run(home, url)

    with receiver(status=500) as (url, _):
        failed = run(url)
    assert [d.delivered for d in failed] == [False]  # stops at the first failure
    with receiver(hang=HANG_SECONDS) as (url, _):
        assert [d.error for d in run(url)] == ["timed out after 0.5 s"]
    with receiver() as (url, received):
        assert all(d.delivered for d in run(url))
        assert len(received) == count
        assert run(url) == [] and len(received) == count  # a re-run posts nothing
    with warehouse.reader(home) as conn:
        stored = conn.sql("select * from alert_deliveries order by incident_id").df()
    assert len(stored) == count and stored["delivered_at"].notna().all()
    assert stored["attempts"].max() == 3  # the first incident: 500, timeout, delivered
    assert not stored.astype(str).apply(lambda c: c.str.contains("secret-token")).any().any()


def test_webhook_url_is_validated_without_repeating_it(tmp_path: Path) -> None:
    ok = parse_settings({"alerts": {"webhook_url": "https://hooks.example/T0/secret"}}, tmp_path)
    assert ok.alerts.webhook_url == "https://hooks.example/T0/secret"
    assert "secret" not in repr(ok)
    assert parse_settings({"alerts": {"webhook_url": None}}, tmp_path).alerts.webhook_url is None
    for bad in ("ftp://hooks.example/secret", "hooks.example/secret", 42, "http://[::1/secret"):
        with pytest.raises(EventpulseError) as error:
            parse_settings({"alerts": {"webhook_url": bad}}, tmp_path)
        assert "secret" not in str(error.value) and "webhook_url" in str(error.value)
    with pytest.raises(EventpulseError, match="unknown key 'channel'"):
        parse_settings({"alerts": {"channel": "#ops"}}, tmp_path)


@pytest.mark.slow
def test_eventpulse_run_posts_each_incident_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    generate(home, days=35, users=500, seed=7)
    env = {
        **os.environ,
        "EVENTPULSE_HOME": str(home),
        "EVENTPULSE_CONFIG": str(home / "eventpulse.yaml"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    with receiver() as (url, received):
        (home / "eventpulse.yaml").write_text(f"alerts: {{webhook_url: '{url}'}}\n")
        command = [sys.executable, "-m", "pipelines.cli", "run"]
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        assert first.returncode == 0, first.stderr[-2000:]
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
            flagged = conn.sql(
                "select metric_date, metric, dimension, segment from anomalies where is_anomaly"
            ).fetchall()
            incident_ids = {
                r[0] for r in conn.sql("select incident_id from anomaly_incidents").fetchall()
            }
        posted_rows = [
            (body["metric_date"], row["metric"], row["dimension"], row["segment"])
            for body in received
            for row in body["rows"]
        ]
        assert flagged and len(received) == len(incident_ids)
        assert sorted({b["incident_id"] for b in received}) == sorted(incident_ids)
        # Every flagged row in exactly one posted incident.
        assert sorted(posted_rows) == sorted(
            (day.isoformat(), metric, dimension, segment)
            for day, metric, dimension, segment in flagged
        )
        last_day = max(body["metric_date"] for body in received)
        again = subprocess.run(
            [*command, "--date", last_day], env=env, capture_output=True, text=True, timeout=1200
        )
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(received) == len(incident_ids)  # the second run posted nothing
        # Nothing changed: the day is not read again and its report is kept as it was.
        said = again.stdout + again.stderr
        assert f"{last_day}: unchanged since its last load" in said
        assert "1 of 1 daily reports are unchanged" in said
    for text in (first.stdout + first.stderr, again.stdout + again.stderr):
        assert "secret-token" not in text
    for path in home.rglob("*"):
        if path.is_file() and path.suffix in {".md", ".html", ".log", ".txt", ".json"}:
            assert "secret-token" not in path.read_text(errors="replace"), path
