"""`eventpulse query`: read-only SQL over the published warehouse, contained (issue 7).

Three layers, each enough on its own for some attacks: only SELECT/EXPLAIN statements are
accepted; the connection is read-only; external access is off except the home folder and the
configuration is locked, so no COPY, ATTACH, INSTALL/LOAD, file reads outside home or URLs.
A memory limit and a timeout stop runaway queries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.errors import EventpulseError

ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
DEFAULT_TIMEOUT_SECONDS = 60.0
MEMORY_LIMIT = "4GB"


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def run_query(home: Path, sql: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryResult:
    """Run read-only SQL against the published warehouse; one clear error for anything else."""
    conn = sandboxed_connection(home)
    try:
        statements = _checked_statements(conn, sql)
        return _run_with_timeout(conn, statements, timeout)
    finally:
        conn.close()


def sandboxed_connection(home: Path) -> duckdb.DuckDBPyConnection:
    path = warehouse.published_path(home)
    if not path.exists():
        raise EventpulseError(
            f"No warehouse at {path} yet; run `eventpulse run` (or `make demo`) first."
        )
    conn = warehouse.connect(path, read_only=True)
    for setting, value in (
        ("allowed_directories", [str(home.resolve())]),
        ("enable_external_access", False),
        ("autoinstall_known_extensions", False),
        ("autoload_known_extensions", False),
        ("memory_limit", MEMORY_LIMIT),
        ("lock_configuration", True),  # last: nothing after this can loosen the sandbox
    ):
        conn.execute(f"set {setting} = $value", {"value": value})
    return conn


def _checked_statements(conn: duckdb.DuckDBPyConnection, sql: str) -> list:
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise EventpulseError(f"The query does not parse: {_first_line(exc)}") from None
    if not statements:
        raise EventpulseError("The query is empty; pass a SELECT statement.")
    for statement in statements:
        if statement.type not in ALLOWED_STATEMENTS:
            kind = statement.type.name.replace("_", " ")
            raise EventpulseError(
                f"Refused: `eventpulse query` is read-only and runs SELECT statements only "
                f"(got {kind})."
            )
    return statements


def _run_with_timeout(
    conn: duckdb.DuckDBPyConnection, statements: list, timeout: float
) -> QueryResult:
    timer = threading.Timer(timeout, conn.interrupt)
    timer.start()
    try:
        result = None
        for statement in statements:
            result = conn.execute(statement)
        columns = [d[0] for d in result.description] if result.description else []
        return QueryResult(columns=columns, rows=result.fetchall())
    except duckdb.InterruptException:
        raise EventpulseError(
            f"The query ran longer than {timeout:g} s and was stopped; narrow it or pass "
            "--timeout with more seconds."
        ) from None
    except duckdb.OutOfMemoryException:
        raise EventpulseError(
            f"The query needed more than the {MEMORY_LIMIT} memory limit and was stopped; "
            "aggregate or filter more."
        ) from None
    except duckdb.PermissionException as exc:
        raise EventpulseError(
            f"Refused: {_first_line(exc)} (queries may only read the warehouse and files "
            "under the home folder)."
        ) from None
    except duckdb.Error as exc:
        raise EventpulseError(f"The query failed: {_first_line(exc)}") from None
    finally:
        timer.cancel()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
