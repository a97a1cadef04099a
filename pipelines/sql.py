"""Run one model from `sql/`: split its statements and bind `$named` parameters.

Values are always bound, never pasted into SQL text (STYLE: no values pasted into SQL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def sql_text(name: str) -> str:
    """The text of `sql/<name>` (e.g. `marts/daily_metrics.sql`)."""
    return (SQL_DIR / name).read_text()


def run_sql(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> None:
    """Execute every statement of `sql`, giving each only the parameters it uses."""
    params = params or {}
    for statement in conn.extract_statements(sql):
        wanted = statement.named_parameters
        missing = wanted - params.keys()
        if missing:
            raise KeyError(f"SQL statement needs parameters {sorted(missing)}")
        if wanted:
            conn.execute(statement, {name: params[name] for name in wanted})
        else:
            conn.execute(statement)


def run_sql_file(
    conn: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> None:
    """Run the model `sql/<name>` with `params` bound to its `$named` placeholders."""
    run_sql(conn, sql_text(name), params)
