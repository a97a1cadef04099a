"""Which files in `landing/events/` count (CONTRACT §2): the one rule ingest, the CLI and the
sensor share.

An arrival day is a folder `date=YYYY-MM-DD` directly under the landing folder; its files are
every non-hidden file below it (editor swap files and partial copies start with a dot), in
relative-path order, which is the dedup tie-break between copies. A folder whose name is not a
real date, or that is more than a day in the future, is no arrival day: it is reported in one
sentence (`stray_folders`) and skipped, never run through.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ARRIVAL_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
# A record may be stamped up to a day after the end of its arrival day (CONTRACT §2
# future_timestamp); a folder dated later than tomorrow is a mistake, not data to wait for.
FUTURE_DAYS = 1


@dataclass(frozen=True)
class StrayFolder:
    """A folder under landing/events that is skipped, with the sentence that says why."""

    path: Path
    reason: str


def files_fingerprint(folder: Path, files: Sequence[Path], with_ctime: bool = False) -> str:
    """A hash of `files`' names (relative to `folder`), sizes and modification times: it
    changes when a file is added, removed, replaced or written again, without reading any.
    `with_ctime`: their inode change times too, which no copy or `touch` can set back (a file
    copied in with its old modification time, as `cp -p` does, still counts as changed)."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        changed = f"\0{stat.st_ctime_ns}" if with_ctime else ""
        digest.update(
            f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}{changed}\n".encode()
        )
    return digest.hexdigest()[:16]


def arrival_folder(landing_dir: Path, day: dt.date) -> Path:
    return landing_dir / f"date={day.isoformat()}"


def arrival_folders(landing_dir: Path, today: dt.date | None = None) -> list[tuple[dt.date, Path]]:
    """Every arrival day's folder, sorted by day (stray folders left out)."""
    return sorted(_scan(landing_dir, today)[0])


def landing_dates(landing_dir: Path, today: dt.date | None = None) -> list[dt.date]:
    """Arrival days that have a folder, sorted."""
    return [day for day, _ in arrival_folders(landing_dir, today)]


def stray_folders(landing_dir: Path, today: dt.date | None = None) -> list[StrayFolder]:
    """The folders under landing/events that are no arrival day, each with its reason."""
    return _scan(landing_dir, today)[1]


def arrival_files(folder: Path) -> list[Path]:
    """Every non-hidden file under an arrival folder, in relative-path order."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def _scan(
    landing_dir: Path, today: dt.date | None
) -> tuple[list[tuple[dt.date, Path]], list[StrayFolder]]:
    if not landing_dir.is_dir():
        return [], []
    latest = (today or dt.datetime.now(dt.UTC).date()) + dt.timedelta(days=FUTURE_DAYS)
    days, strays = [], []
    for child in sorted(landing_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        match = ARRIVAL_FOLDER.match(child.name)
        try:
            day = dt.date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            strays.append(
                StrayFolder(
                    child,
                    f"landing folder {child.name!r} is not named date=YYYY-MM-DD with a real "
                    "date; its files are not loaded (rename it, e.g. date=2026-11-05).",
                )
            )
        elif day > latest:
            strays.append(
                StrayFolder(
                    child,
                    f"landing folder {child.name} is dated after tomorrow ({latest}); it is "
                    "skipped until then (rename it if the date is a mistake).",
                )
            )
        else:
            days.append((day, child))
    return days, strays
