"""Never overwrite a user's file (issue 16, item 5): the demo writes into a home only when every
file it would replace or mix with is one an earlier demo wrote.

Demo landing files are recognised by their names (`files.is_demo_file_name`); `demo_labels.json`
and `docs/changelog.md` by the SHA-256 the last demo recorded in `.eventpulse-demo.json`, so a
changelog the user wrote or edited is theirs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipelines.demo.files import is_demo_file_name
from pipelines.errors import EventpulseError

MANIFEST = ".eventpulse-demo.json"
OWN_FILES = ("demo_labels.json", "docs/changelog.md")  # replaced whole by every demo run
SHOWN = 3  # files named in the refusal


def refuse_users_files(home: Path) -> None:
    """Raise, writing nothing, when the home holds a file of the user's that the demo would
    overwrite or drop its files beside."""
    found = users_files(home)
    if not found:
        return
    names = ", ".join(str(p.relative_to(home)) for p in found[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    raise EventpulseError(
        f"{home} already holds files that are not the demo's ({names}{more}), which the demo "
        "would overwrite or mix with; nothing was written: generate into an empty folder "
        "(EVENTPULSE_HOME=./demo-data eventpulse demo, or eventpulse generate --out DIR), or "
        "move those files away first."
    )


def users_files(home: Path) -> list[Path]:
    """The files of `home` that the demo did not write and would overwrite or mix with."""
    recorded = _recorded(home)
    found = [
        home / name
        for name in OWN_FILES
        if (home / name).is_file() and recorded.get(name) != _digest(home / name)
    ]
    landing = home / "landing" / "events"
    if landing.is_dir():
        found += sorted(
            path
            for path in landing.rglob("*")
            if path.is_file() and not is_demo_file_name(path.name)
        )
    return found


def record_demo_files(home: Path) -> None:
    """Remember the demo's own files as written now, so the next demo may replace them."""
    digests = {name: _digest(home / name) for name in OWN_FILES if (home / name).is_file()}
    (home / MANIFEST).write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def _recorded(home: Path) -> dict[str, str]:
    try:
        recorded = json.loads((home / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
