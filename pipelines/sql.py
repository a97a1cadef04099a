"""Run one model from `sql/`: load what it needs, split its statements, bind `$named` parameters.

Values are always bound, never pasted into SQL text (STYLE: no values pasted into SQL).
A model states the files it depends on (macros) in its header, one line each:

    -- needs: macros/segments.sql

and `run_sql_file` runs those first, so a caller cannot forget one.

A connection that runs many models in a row for one caller (the report replay's in-memory
warehouse, pipelines/as_of.py) can ask for its set-up to run once: inside `setup_once(conn)`,
a file of `sql/macros/` (temp macros only, each `create or replace`) runs on its first use
and is skipped after, and so is anything else the caller guards with `first_time` (the base
schema, pipelines/warehouse.py). Outside that scope every call runs as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NEEDS = re.compile(r"^--\s*needs:\s*(\S+)\s*$", re.MULTILINE)
MACROS = "macros/"
# Per connection inside `setup_once`: what has been set up on it (keyed by id(): the scope
# holds the connection open, so no other connection can take its id meanwhile).
_SET_UP: dict[int, set[str]] = {}


def sql_text(name: str) -> str:
    """The text of `sql/<name>` (e.g. `marts/daily_metrics.sql`)."""
    path = os.path.join(SQL_DIR, name)
    stat = os.stat(path)
    return _read_text(path, stat.st_mtime_ns, stat.st_size)


# Read again only when the file changed: every mart's refresh reads its models and what they
# need (its fingerprint too), and a backfill's report replay refreshes seven marts per day.
@functools.lru_cache(maxsize=1024)
def _read_text(path: str, mtime_ns: int, size: int) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


@functools.cache
def code_fingerprint(patterns: tuple[str, ...], libraries: tuple[str, ...] = ()) -> str:
    """A hash of the project's files matching `patterns` (globs from the project root, e.g.
    "sql/staging/*.sql") and of the installed versions of `libraries` (distribution names):
    what a stored result records of the code that made it, so that a new version of that code,
    or an upgraded library, makes it again. Read once per process."""
    root = SQL_DIR.parent
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in root.glob(pattern)}):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    for library in libraries:
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}=={version}\n".encode())
    return digest.hexdigest()[:16]


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
    placeholders (a macro file only once inside `setup_once`)."""
    if name.startswith(MACROS) and not first_time(conn, name):
        return
    text = sql_text(name)
    for needed in _NEEDS.findall(text):
        run_sql_file(conn, needed)
    run_sql(conn, text, params)


@contextmanager
def setup_once(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within: the macro files, and what callers guard with `first_time`, run once on `conn`.

    Only for a connection the caller alone uses and never rolls back without leaving the scope
    (the error that rolls a transaction back must end it): a temp macro created in a
    transaction that is rolled back is gone, and would not be created again here. Nothing
    within may drop what the set-up made."""
    key = id(conn)
    _SET_UP[key] = set()
    try:
        yield
    finally:
        del _SET_UP[key]


def first_time(conn: duckdb.DuckDBPyConnection, what: str) -> bool:
    """Whether `what` is yet to be done on `conn`: always outside `setup_once`, once inside
    (the first call says True and counts it as done)."""
    done = _SET_UP.get(id(conn))
    if done is None:
        return True
    if what in done:
        return False
    done.add(what)
    return True
