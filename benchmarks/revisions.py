"""An earlier revision of the project, to time beside this one in the same benchmark run."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout(revision: str, scratch: Path) -> Path:
    """The files of `revision` (committed only, `git archive`) in a folder under `scratch`, so
    edits made while a benchmark runs are not measured."""
    folder = scratch / f"code-{revision.replace('/', '_')}"
    if not folder.exists():
        folder.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def describe(revision: str) -> str:
    """The short commit hash of `revision`."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def run_script(code: Path, script: str, *args: str, cwd: Path | None = None) -> dict:
    """Run `script` (Python source) with the project at `code` importable, offline, in a process
    of its own (so each is timed alone); returns the JSON object it prints last."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "EVENTPULSE_CONFIG"},
        "PYTHONPATH": str(code),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd or code,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_process(
    command: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run `command` to its end (it must succeed); returns it with its wall seconds and the CPU
    seconds (user + system) of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(command), cwd=cwd, env=dict(env), check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu
