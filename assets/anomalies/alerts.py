"""Alerts (CONTRACT §3 `anomalies`, §1 `alerts.webhook_url`): each new incident POSTed once as
JSON with a Slack-compatible `text`. Plain functions, no Dagster; the standard library's urllib.

- Which incidents are new: those of `anomaly_incidents` without a delivery in `alert_deliveries`
  (the warehouse remembers, so re-runs and backfills never post one twice).
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


def pending_incidents(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows of the incidents not delivered yet (all their rows), oldest incident first."""
    tables = {row[0] for row in conn.sql("select table_name from duckdb_tables()").fetchall()}
    if "anomaly_incidents" not in tables:
        return pd.DataFrame()
    delivered = (
        "and incident_id not in "
        "(select incident_id from alert_deliveries where delivered_at is not null)"
        if "alert_deliveries" in tables
        else ""
    )
    return conn.sql(
        f"select * from anomaly_incidents where true {delivered} "
        "order by metric_date, incident_id, not is_lead, metric, dimension, segment"
    ).df()


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
    url: str, pending: pd.DataFrame, reports_dir: Path, timeout: float = TIMEOUT_SECONDS
) -> list[Delivery]:
    """POST each pending incident in order, stopping at the first failure (see the module)."""
    deliveries: list[Delivery] = []
    if pending.empty:
        return deliveries
    for incident_id, rows in pending.groupby("incident_id", sort=False):
        body = payload(rows, reports_dir)
        error = post(url, body, timeout)
        day = pd.Timestamp(rows["metric_date"].iloc[0]).date()
        deliveries.append(Delivery(str(incident_id), day, error is None, error))
        if error is not None:
            break
    return deliveries


def record_deliveries(conn: duckdb.DuckDBPyConnection, deliveries: list[Delivery]) -> None:
    """Remember each attempt in `alert_deliveries` (one transaction)."""
    frame = pd.DataFrame(
        [dataclasses.asdict(d) for d in deliveries],
        columns=["incident_id", "metric_date", "delivered", "error"],
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
