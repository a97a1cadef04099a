"""Which files in `landing/events/` count (CONTRACT §2): the one rule ingest and the sensor share.

An arrival day is a folder `date=YYYY-MM-DD` directly under the landing folder; its files are
every non-hidden file below it (editor swap files and partial copies start with a dot), in
relative-path order, which is the dedup tie-break between copies.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

ARRIVAL_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def arrival_folder(landing_dir: Path, day: dt.date) -> Path:
    return landing_dir / f"date={day.isoformat()}"


def arrival_folders(landing_dir: Path) -> list[tuple[dt.date, Path]]:
    """Every `date=YYYY-MM-DD` folder with a real date, sorted by day."""
    if not landing_dir.is_dir():
        return []
    folders = []
    for child in landing_dir.iterdir():
        match = ARRIVAL_FOLDER.match(child.name)
        if not (child.is_dir() and match):
            continue
        try:
            folders.append((dt.date.fromisoformat(match.group(1)), child))
        except ValueError:
            continue
    return sorted(folders)


def landing_dates(landing_dir: Path) -> list[dt.date]:
    """Arrival days that have a `date=YYYY-MM-DD` folder, sorted."""
    return [day for day, _ in arrival_folders(landing_dir)]


def arrival_files(folder: Path) -> list[Path]:
    """Every non-hidden file under an arrival folder, in relative-path order."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
