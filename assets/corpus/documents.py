"""RAG corpus documents (CONTRACT §4): the `Document` type, and the documents read from files:
the user's `docs/` and the daily and weekly Markdown reports.

Each source is skipped when absent, because the stages that produce it may not have run yet.
Nothing here chunks, embeds or writes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("report", "anomaly", "funnel", "cohort", "glossary", "doc")
USER_DOC_SUFFIXES = (".md", ".markdown", ".txt", ".jsonl")
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\([^)]*\)\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_DAILY_REPORT = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$")
_WEEKLY_REPORT = re.compile(r"^(\d{4})-W(\d{2})\.md$")


@dataclass(frozen=True)
class Document:
    """One source document; `body` is Markdown when `markdown`, else plain paragraphs."""

    doc_id: str
    kind: str
    title: str
    source: str
    date: dt.date | None
    body: str
    markdown: bool = False


def user_documents(docs_dir: Path, problems: list[str]) -> list[Document]:
    """`docs/**/*.md|.txt` as one document each; `*.jsonl` as one document per line."""
    if not docs_dir.is_dir():
        return []
    documents: list[Document] = []
    for path in sorted(docs_dir.rglob("*")):
        relative = path.relative_to(docs_dir)
        hidden = any(part.startswith(".") for part in relative.parts)
        if hidden or not path.is_file() or path.suffix.lower() not in USER_DOC_SUFFIXES:
            continue
        if not path.resolve().is_relative_to(docs_dir.resolve()):
            # A link out of docs/ (to a key file, say) would put that file in every answer.
            problems.append(
                f"docs/{relative.as_posix()}: a symbolic link to a file outside docs/; not read."
            )
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            problems.append(f"docs/{relative.as_posix()}: unreadable ({exc.strerror}); skipped.")
            continue
        if path.suffix.lower() == ".jsonl":
            documents += _jsonl_documents(relative.as_posix(), text, problems)
        else:
            documents.append(_file_document(relative.as_posix(), path.suffix.lower(), text))
    return documents


def _file_document(relative: str, suffix: str, text: str) -> Document:
    markdown = suffix in (".md", ".markdown")
    title = relative
    if markdown:
        first = next((line for line in text.splitlines() if line.strip()), "")
        heading = MARKDOWN_HEADING.match(first)
        if heading and len(heading.group(1)) == 1:
            title = heading.group(2)
    return Document(
        doc_id=f"doc:{relative}",
        kind="doc",
        title=title,
        source=f"docs/{relative}",
        date=None,
        body=text,
        markdown=markdown,
    )


def _jsonl_documents(relative: str, text: str, problems: list[str]) -> Iterator[Document]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"docs/{relative} line {line_no}: not valid JSON; skipped.")
            continue
        body = record.get("text") if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            problems.append(f"docs/{relative} line {line_no}: no `text` string; skipped.")
            continue
        line_id = str(record.get("id") or record.get("_id") or f"line{line_no}")
        title = str(record.get("title") or f"{relative} {line_id}")
        yield Document(
            doc_id=f"doc:{relative}:{line_id}",
            kind="doc",
            title=title,
            source=f"docs/{relative}",
            date=optional_date(record.get("date")),
            body=body,
        )


def optional_date(value: Any) -> dt.date | None:
    """An ISO date at the start of `value`, or None when there is none."""
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def report_documents(reports_dir: Path) -> list[Document]:
    """One document per daily and weekly Markdown report; chunking splits its sections."""
    documents = []
    for path in sorted((reports_dir / "daily").glob("*.md")):
        match = _DAILY_REPORT.match(path.name)
        day = optional_date(match.group(1)) if match else None
        if day:
            title = f"Daily report {day.isoformat()}"
            documents.append(_report(path, f"report:daily:{day.isoformat()}", title, day))
    for path in sorted((reports_dir / "weekly").glob("*.md")):
        match = _WEEKLY_REPORT.match(path.name)
        if not match:
            continue
        week = f"{match.group(1)}-W{match.group(2)}"
        try:
            monday = dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            continue
        sunday = monday + dt.timedelta(days=6)
        title = f"Weekly report {week} ({monday.isoformat()} to {sunday.isoformat()})"
        documents.append(_report(path, f"report:weekly:{week}", title, monday))
    return documents


def _report(path: Path, doc_id: str, title: str, day: dt.date) -> Document:
    text = _HTML_COMMENT.sub("", path.read_text(encoding="utf-8", errors="replace"))
    # Figures are PNG links: noise for retrieval (their numbers are in the report's tables).
    text = "\n".join(line for line in text.splitlines() if not _IMAGE_LINE.match(line))
    source = f"reports/{path.parent.name}/{path.name}"
    return Document(doc_id, "report", title, source, day, text, markdown=True)
