"""`eventpulse query`: read-only SQL over the published warehouse, contained (issue 7).

Three layers, each enough on its own for some attacks: only SELECT/EXPLAIN statements are
accepted; the connection is read-only; external access is off except the home folder and the
configuration is locked, so no COPY, ATTACH, INSTALL/LOAD, file reads outside home or URLs.
A memory limit and a timeout stop runaway queries.

Results are streamed: rows come from DuckDB in batches (`open_query`), so a huge result is never
held whole in Python (the CLI prints CSV and JSON as they come and bounds the table view).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.errors import EventpulseError

ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
DEFAULT_TIMEOUT_SECONDS = 60.0
MEMORY_LIMIT = "4GB"
# Rows fetched from DuckDB at a time: a few MB of Python objects for typical rows.
BATCH_ROWS = 10_000


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]


@dataclass
class QueryStream:
    """A running query: its column names and its rows, fetched batch by batch."""

    columns: list[str]
    batches: Iterator[list[tuple]]


def run_query(home: Path, sql: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryResult:
    """Run read-only SQL against the published warehouse and keep every row (small results)."""
    with open_query(home, sql, timeout) as stream:
        return QueryResult(stream.columns, [row for batch in stream.batches for row in batch])


@contextlib.contextmanager
def open_query(
    home: Path, sql: str, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> Iterator[QueryStream]:
    """Run read-only SQL against the published warehouse; its rows are fetched in batches of
    BATCH_ROWS while the block reads them. One clear error for anything refused or failed."""
    conn = sandboxed_connection(home)
    # The timeout covers fetching too: a huge result is stopped like a slow query.
    timer = threading.Timer(timeout, conn.interrupt)
    timer.start()
    try:
        with _one_sentence(timeout):
            statements = _checked_statements(conn, sql)
            result = None
            for statement in statements:
                result = conn.execute(statement)
            columns = [d[0] for d in result.description] if result.description else []
        yield QueryStream(columns, _batches(result, timeout))
    finally:
        timer.cancel()
        conn.close()


def _batches(result: duckdb.DuckDBPyConnection, timeout: float) -> Iterator[list[tuple]]:
    with _one_sentence(timeout):
        while batch := result.fetchmany(BATCH_ROWS):
            yield batch


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


@contextlib.contextmanager
def _one_sentence(timeout: float) -> Iterator[None]:
    """DuckDB's errors (and Python running out of memory) as one sentence with the fix."""
    try:
        yield
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
    except MemoryError:
        raise EventpulseError(
            "The result did not fit in memory; aggregate or filter more, or print it with "
            "--format csv, which streams rows."
        ) from None
    except duckdb.PermissionException as exc:
        raise EventpulseError(
            f"Refused: {_first_line(exc)} (queries may only read the warehouse and files "
            "under the home folder)."
        ) from None
    except duckdb.Error as exc:
        raise EventpulseError(f"The query failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
