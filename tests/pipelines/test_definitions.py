"""The folders are the asset graph: each asset's group is its folder, stages stay apart."""

from __future__ import annotations

import ast
import sys
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
