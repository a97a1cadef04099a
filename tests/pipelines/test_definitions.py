"""The folders are the asset graph: each asset's group is its folder, stages stay apart; step
processes start warm."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines.definitions import defs

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


def test_every_asset_group_is_the_folder_that_defines_it() -> None:
    for assets_def in defs.assets:
        folder = sys.modules[assets_def.op.compute_fn.decorated_fn.__module__].__name__
        stage = folder.split(".")[1]
        for key in assets_def.keys:
            assert assets_def.group_names_by_key[key] == stage, (key, folder)


def test_no_stage_imports_another_stage() -> None:
    for path in ASSETS_DIR.rglob("*.py"):
        stage = path.relative_to(ASSETS_DIR).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "assets" and len(parts) > 1:
                    assert parts[1] == stage, f"{path.relative_to(ASSETS_DIR)} imports {name}"


def test_every_stage_folder_is_a_group_of_the_definitions() -> None:
    stages = {
        p.name for p in ASSETS_DIR.iterdir() if (p / "assets.py").exists() or p.name == "marts"
    }
    groups = {group for a in defs.assets for group in a.group_names_by_key.values()}
    assert groups == stages


def test_step_processes_open_the_dagster_instance_without_importing_its_storage() -> None:
    """Every step of a UI, schedule or sensor run is a process forked from a server that has
    imported STEP_PROCESS_PRELOAD; opening the instance there must import neither SQLAlchemy
    nor Alembic again (SQLAlchemy and Alembic were ~0.5 CPU s in every step before they were preloaded)."""
    probe = textwrap.dedent(
        """
        import os, sys, tempfile
        from pipelines.definitions import STEP_PROCESS_PRELOAD
        for module in STEP_PROCESS_PRELOAD:
            __import__(module)
        from dagster import DagsterInstance
        from dagster._core.instance.ref import InstanceRef
        ref = InstanceRef.from_dir(tempfile.mkdtemp())
        before = set(sys.modules)
        DagsterInstance.from_ref(ref).event_log_storage
        print(sorted(m for m in set(sys.modules) - before
                     if m.split(".")[0] in {"sqlalchemy", "alembic"}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
