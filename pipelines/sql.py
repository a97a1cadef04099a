"""Run one model from `sql/`: load what it needs, split its statements, bind `$named` parameters.

Values are always bound, never pasted into SQL text (STYLE: no values pasted into SQL).
A model states the files it depends on (macros) in its header, one line each:

    -- needs: macros/segments.sql

and `run_sql_file` runs those first, so a caller cannot forget one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NEEDS = re.compile(r"^--\s*needs:\s*(\S+)\s*$", re.MULTILINE)


def sql_text(name: str) -> str:
    """The text of `sql/<name>` (e.g. `marts/daily_metrics.sql`)."""
    return (SQL_DIR / name).read_text()


def model_files(name: str) -> list[str]:
    """`name` and every file it needs (`-- needs:`, recursively), each once."""
    files = [name]
    for needed in _NEEDS.findall(sql_text(name)):
        files += [f for f in model_files(needed) if f not in files]
    return files


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
    """Run the model `sql/<name>` (after the files it needs) with `params` bound to its `$named`
    placeholders."""
    text = sql_text(name)
    for needed in _NEEDS.findall(text):
        run_sql_file(conn, needed)
    run_sql(conn, text, params)
