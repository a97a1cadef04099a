"""The shape of a report: sections of notes, bullets, tables and figures, their cells as text."""

from __future__ import annotations

from dataclasses import dataclass, field

MISSING = "—"  # a table cell without a value


@dataclass
class Table:
    """A table shown in both documents, its cells already written as text."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class ReportFigure:
    """A PNG beside the report (path relative to the documents) and the numbers it shows."""

    src: str
    title: str
    table: Table


@dataclass
class Section:
    """One report section: notes (sentences), bullets, tables, then figures with their numbers."""

    key: str
    title: str
    notes: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    columns: int = 1  # figures a row in the HTML (2 for sections of like, smaller charts)
