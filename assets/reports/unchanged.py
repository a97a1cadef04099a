"""Which reports a run may leave as they are: those written from the inputs it has now.

A report is a function of its inputs: the warehouse's content, the settings and the code
(build.py: it holds no generation time, so writing it again from the same inputs gives the same
bytes). A run records, per report it wrote, one hash of those inputs in
`<home>/.eventpulse/reports.json`, and writes again only the reports whose hash changed or
whose files are gone: a re-run over unchanged data (90 demo days: ~45 s of reports) writes
none. Any change anywhere (a day loaded with other files, a new day, an edited setting, a new
eventpulse version) writes them all, as before: the hash is the whole warehouse's, not the
part a report reads, so no report can be left behind by a change to something it reads.

The entries of the reports a run is about to write are removed before it writes them: a run
killed meanwhile leaves them unrecorded, and the next run writes them again.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import duckdb

from assets.reports.build import Period, ReportPaths, report_periods
from pipelines.settings import Settings
from pipelines.sql import code_fingerprint

# What reports are made by: every model, stage and template, and the libraries that replay the
# marts, draw the figures and render the documents (a change to any writes them all).
REPORT_CODE = ("sql/**/*.sql", "assets/**/*.py", "assets/**/*.j2", "pipelines/**/*.py")
REPORT_LIBRARIES = ("duckdb", "matplotlib", "pillow", "numpy", "pandas", "jinja2", "tzdata")
# Tables that record how runs went, not what reports show; they change on every run (load
# times, mart bookkeeping, publish generations, alert deliveries).
BOOKKEEPING_TABLES = frozenset(
    {
        "ingest_log",
        "mart_state",
        "mart_changes",
        "anomaly_state",
        "publish_generation",
        "publish_journal",
        "alert_deliveries",
    }
)


def report_inputs(conn: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """One hash of what every report is written from: the content of each table but the
    bookkeeping ones (in any row order), the settings (but the alerts', which reports never
    show, so that the webhook URL goes into nothing they keep, and the paths) and the code."""
    columns = conn.execute(
        "select table_name, list(column_name order by column_index) from duckdb_columns() "
        "where database_name = current_database() and schema_name = 'main' "
        "group by table_name order by table_name"
    ).fetchall()
    digest = hashlib.sha256(code_fingerprint(REPORT_CODE, REPORT_LIBRARIES).encode())
    # Where the home and the config file are shows in no report: a moved home keeps them.
    shown = {
        name: value
        for name, value in vars(settings).items()
        if name not in ("alerts", "home", "config_path")
    }
    digest.update(repr(sorted(shown.items())).encode())
    for table, names in columns:
        if table in BOOKKEEPING_TABLES:
            continue
        # Each column by name: a row alias would be a column of a table that had one. Records'
        # raw text (event_copies, quarantine) is in no report (the replay copies events
        # without it) and was 2/3 of hashing event_copies, a cost that grows with the history.
        row = ", ".join(f'"{name}"' for name in names if name != "raw")
        ((rows, content),) = conn.execute(
            f'select count(*), sum(hash({row})) from "{table}"'
        ).fetchall()
        digest.update(f"{table}\0{rows}\0{content}\n".encode())
    return digest.hexdigest()[:32]


def write_changed_reports(
    settings: Settings,
    kind: str,
    starts: Sequence[dt.date],
    inputs: str,
    write: Callable[[list[dt.date]], list[ReportPaths]],
) -> tuple[list[ReportPaths], int]:
    """The `kind` reports of `starts`, oldest first: those recorded as written from `inputs`
    (report_inputs) with their files all there are kept, `write(their starts)` writes the
    others (oldest first, one ReportPaths each). Returns every report's paths and how many
    were kept."""
    periods = report_periods(kind, starts)
    with _locked(settings):
        # Under the lock from the first read to the last save: another run writing reports
        # meanwhile would otherwise save its older copy of the record over this one's.
        record = WrittenReports(settings)
        kept = {p.label: paths for p in periods if (paths := record.unchanged(p, inputs))}
        stale = [p for p in periods if p.label not in kept]
        record.forget(stale)
        written = write([p.start for p in stale]) if stale else []
        record.remember(stale, written, inputs)
    by_label = kept | {p.label: paths for p, paths in zip(stale, written, strict=True)}
    return [by_label[p.label] for p in periods], len(kept)


@contextmanager
def writing_reports(settings: Settings, kind: str, starts: Sequence[dt.date]) -> Iterator[None]:
    """Around a write of reports outside a run (`eventpulse report`): their entries are
    removed first, so that no run keeps a file written with other settings or code."""
    with _locked(settings):
        WrittenReports(settings).forget(report_periods(kind, starts))
        yield


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """One writer of reports and their record at a time (an advisory lock beside the record)."""
    folder = settings.home / ".eventpulse"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "reports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _Written:
    inputs: str
    has_data: bool
    figures: tuple[str, ...]  # file names in the report's figures folder


class WrittenReports:
    """The record of the reports written and what from (`<home>/.eventpulse/reports.json`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.home / ".eventpulse" / "reports.json"
        try:
            self.entries: dict[str, dict[str, _Written]] = {
                kind: {
                    label: _Written(e["inputs"], e["has_data"], tuple(e["figures"]))
                    for label, e in labels.items()
                }
                for kind, labels in json.loads(self.path.read_text()).items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}  # none yet, or not ours: every report is written again

    def unchanged(self, period: Period, inputs: str) -> ReportPaths | None:
        """The report's paths when it was written from `inputs` and its files are all there."""
        entry = self.entries.get(period.kind, {}).get(period.label)
        if entry is None or entry.inputs != inputs:
            return None
        paths = self._paths(period, entry)
        files = (paths.markdown, paths.html, *paths.figures)
        return paths if all(path.is_file() for path in files) else None

    def forget(self, periods: Sequence[Period]) -> None:
        """Unrecord the reports about to be written (saved at once)."""
        for period in periods:
            self.entries.get(period.kind, {}).pop(period.label, None)
        self._save()

    def remember(
        self, periods: Sequence[Period], written: Sequence[ReportPaths], inputs: str
    ) -> None:
        """Record the reports just written from `inputs` (saved at once)."""
        for period, paths in zip(periods, written, strict=True):
            figures = tuple(path.name for path in paths.figures)
            self.entries.setdefault(period.kind, {})[period.label] = _Written(
                inputs, paths.has_data, figures
            )
        self._save()

    def _paths(self, period: Period, entry: _Written) -> ReportPaths:
        folder = self.settings.reports_dir / period.kind
        return ReportPaths(
            markdown=folder / f"{period.label}.md",
            html=folder / f"{period.label}.html",
            figures=tuple(folder / period.label / name for name in entry.figures),
            has_data=entry.has_data,
        )

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        stored = {
            kind: {label: asdict(entry) for label, entry in sorted(labels.items())}
            for kind, labels in self.entries.items()
        }
        temporary.write_text(json.dumps(stored, indent=1))
        os.replace(temporary, self.path)
