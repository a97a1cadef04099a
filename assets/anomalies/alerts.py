"""Alerts (CONTRACT §3 `anomalies`, §1 `alerts.webhook_url`): each new incident POSTed once as
JSON with a Slack-compatible `text`. Plain functions, no Dagster; the standard library's urllib.

- Which incidents are new: those of `anomaly_incidents` without a delivery in `alert_deliveries`
  (the warehouse remembers, so re-runs and backfills never post one twice) or in the delivery
  journal. The journal (`<home>/alerts/delivered.jsonl`) is appended and synced right after
  each POST the receiver took: a run that fails later is not published, so its warehouse
  changes are lost, but the journal keeps what was posted, and the next run records it in
  `alert_deliveries` instead of posting it again. (Only a crash between the receiver's answer
  and the journal line can repeat one incident.)
- A failed delivery (an HTTP error, a refused connection, a receiver that hangs past
  TIMEOUT_SECONDS) is recorded with its attempt count and tried again on the next run; it never
  fails the run. After the first failure a run stops posting: the receiver is down, and each
  further try would cost another timeout. The rest wait for the next run, in order.
- The webhook URL is a secret: no message, log line, table or file here holds it. Errors are
  recorded as their kind ("HTTP 500", "timed out"), never as urllib's text.
- Redirects are not followed: the payload goes to the configured host or nowhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipelines.sql import run_sql_file

TIMEOUT_SECONDS = 5.0
PAYLOAD_ROW_COLUMNS = ["metric", "dimension", "segment", "value", "expected", "score", "direction"]


@dataclasses.dataclass(frozen=True)
class Delivery:
    incident_id: str
    metric_date: dt.date
    delivered: bool
    error: str | None
    at: dt.datetime = dataclasses.field(default_factory=lambda: _utc_now())


def delivery_journal(home: Path) -> Path:
    """Where the incidents posted are written down the moment the receiver takes them."""
    return home / "alerts" / "delivered.jsonl"


def journaled(journal: Path | None) -> list[Delivery]:
    """The deliveries the journal holds (a line cut short by a crash is skipped)."""
    if journal is None or not journal.exists():
        return []
    deliveries = []
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
            deliveries.append(
                Delivery(
                    entry["incident_id"],
                    dt.date.fromisoformat(entry["metric_date"]),
                    True,
                    None,
                    dt.datetime.fromisoformat(entry["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return deliveries


def unrecorded(conn: duckdb.DuckDBPyConnection, journal: Path | None) -> list[Delivery]:
    """Journal deliveries that `alert_deliveries` does not hold as delivered (their run's
    warehouse changes were lost): recorded by the next run, never posted again."""
    posted = journaled(journal)
    if not posted:
        return []
    recorded: set[str] = set()
    if _has_table(conn, "alert_deliveries"):
        rows = conn.sql(
            "select incident_id from alert_deliveries where delivered_at is not null"
        ).fetchall()
        recorded = {incident_id for (incident_id,) in rows}
    return [d for d in posted if d.incident_id not in recorded]


def pending_incidents(conn: duckdb.DuckDBPyConnection, journal: Path | None = None) -> pd.DataFrame:
    """Rows of the incidents not delivered yet (all their rows), oldest incident first."""
    if not _has_table(conn, "anomaly_incidents"):
        return pd.DataFrame()
    delivered = (
        "and incident_id not in "
        "(select incident_id from alert_deliveries where delivered_at is not null)"
        if _has_table(conn, "alert_deliveries")
        else ""
    )
    pending = conn.sql(
        f"select * from anomaly_incidents where true {delivered} "
        "order by metric_date, incident_id, not is_lead, metric, dimension, segment"
    ).df()
    posted = {d.incident_id for d in journaled(journal)}
    return pending[~pending["incident_id"].isin(posted)].reset_index(drop=True)


def payload(rows: pd.DataFrame, reports_dir: Path) -> dict[str, Any]:
    """The JSON of one incident (CONTRACT §3): `text`, `metric_date`, `rows`, `report`."""
    lead = rows.iloc[0]
    day = pd.Timestamp(lead["metric_date"]).date().isoformat()
    report = Path(reports_dir) / "daily" / f"{day}.html"
    return {
        "text": f"{lead['summary']} Report: {report}",
        "incident_id": lead["incident_id"],
        "metric_date": day,
        "rows": [
            {column: _plain(row[column]) for column in PAYLOAD_ROW_COLUMNS}
            for _, row in rows.iterrows()
        ],
        "report": str(report),
    }


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> str | None:
    """POST `body` as JSON; None when the receiver took it (2xx), else the kind of failure."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "eventpulse"},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
        return f"timed out after {timeout:g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return f"connection failed ({type(reason).__name__})"
    except (OSError, ValueError) as exc:  # a reset connection, a malformed response
        return f"connection failed ({type(exc).__name__})"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(
    url: str,
    pending: pd.DataFrame,
    reports_dir: Path,
    timeout: float = TIMEOUT_SECONDS,
    journal: Path | None = None,
) -> list[Delivery]:
    """POST each pending incident in order, stopping at the first failure (see the module);
    each one the receiver took is written to `journal` at once."""
    deliveries: list[Delivery] = []
    if pending.empty:
        return deliveries
    for incident_id, rows in pending.groupby("incident_id", sort=False):
        body = payload(rows, reports_dir)
        error = post(url, body, timeout)
        day = pd.Timestamp(rows["metric_date"].iloc[0]).date()
        delivery = Delivery(str(incident_id), day, error is None, error)
        deliveries.append(delivery)
        if error is not None:
            break
        if journal is not None:
            _write_down(journal, delivery)
    return deliveries


def record_deliveries(conn: duckdb.DuckDBPyConnection, deliveries: list[Delivery]) -> None:
    """Remember each attempt in `alert_deliveries` (one transaction)."""
    frame = pd.DataFrame(
        [dataclasses.asdict(d) for d in deliveries],
        columns=["incident_id", "metric_date", "delivered", "error", "at"],
    )
    conn.register("attempts", frame)
    try:
        conn.execute("begin")
        run_sql_file(conn, "marts/alert_deliveries.sql")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("attempts")


def _write_down(journal: Path, delivery: Delivery) -> None:
    """One line per delivered incident, on disk before the next POST."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "incident_id": delivery.incident_id,
        "metric_date": delivery.metric_date.isoformat(),
        "at": delivery.at.isoformat(),
    }
    with open(journal, "a") as out:
        out.write(json.dumps(line) + "\n")
        out.flush()
        os.fsync(out.fileno())


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = conn.execute(
        "select count(*) from duckdb_tables() where table_name = $name", {"name": name}
    ).fetchall()
    return rows[0][0] > 0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then surfaces as an HTTPError: a failed delivery


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as JSON values (NaN as null)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and value != value:
            return None
    return value
