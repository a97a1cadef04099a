"""Chunking (CONTRACT §4): documents into stable, content-addressed chunks ready for embedding.

A chunk never crosses a heading and starts with its document title and heading path; its id
is a hash of everything stored with its vector, so an unchanged chunk is never embedded again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from assets.corpus.documents import MARKDOWN_HEADING, Document, optional_date

# Part of every chunk id: a different model must re-embed everything, never mix vector spaces.
EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"
MAX_CHUNK_TOKENS = 320  # the model reads 256 word pieces; FTS reads the whole chunk
OVERLAP_TOKENS = 40
TITLE_SEPARATOR = " › "

_TOKEN = re.compile(r"\w+|[^\w\s]")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_STRUCTURED_LINE = re.compile(r"^\s*(\||[-*+]\s|\d+[.)]\s)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


@dataclass(frozen=True)
class Chunk:
    """One row of the corpus table, before its vector (CONTRACT §4)."""

    chunk_id: str
    doc_id: str
    kind: str
    title: str
    source: str
    date: dt.date | None
    text: str


def chunk_documents(
    documents: Iterable[Document],
    max_tokens: int = MAX_CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[Chunk]:
    """All chunks of all documents, in order; identical chunks of one document appear once."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for document in documents:
        for chunk in chunk_document(document, max_tokens, overlap_tokens):
            if chunk.chunk_id not in seen:
                seen.add(chunk.chunk_id)
                chunks.append(chunk)
    return chunks


def chunk_document(
    document: Document,
    max_tokens: int = MAX_CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[Chunk]:
    """Chunks that never cross a heading; each starts with its title and heading path, so a
    chunk read alone (by the model, by FTS, by a person) still says what it is about."""
    chunks = []
    for path, blocks in _sections(document):
        title = TITLE_SEPARATOR.join([document.title, *path])
        budget = max(max_tokens - count_tokens(title), 50)
        day = document.date
        if document.kind == "doc":
            day = _date_in(path) or day
        for body in _pack(blocks, budget, overlap_tokens):
            chunks.append(_chunk(document, title, day, f"{title}\n\n{body}"))
    return chunks


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to the model's word pieces for English prose."""
    return len(_TOKEN.findall(text))


def chunk_id_for(
    doc_id: str, kind: str, title: str, source: str, date: dt.date | None, text: str
) -> str:
    """Content hash of everything stored with the vector: same content, same id, no re-embed."""
    key = [EMBEDDING_MODEL_ID, doc_id, kind, title, source, date and date.isoformat(), text]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:32]


def _chunk(document: Document, title: str, day: dt.date | None, text: str) -> Chunk:
    chunk_id = chunk_id_for(document.doc_id, document.kind, title, document.source, day, text)
    return Chunk(chunk_id, document.doc_id, document.kind, title, document.source, day, text)


def _date_in(path: tuple[str, ...]) -> dt.date | None:
    """A user document's section headed by a date (a changelog entry) is dated by it."""
    for heading in reversed(path):
        match = _ISO_DATE.search(heading)
        if match:
            day = optional_date(match.group(0))
            if day:
                return day
    return None


def _sections(document: Document) -> list[tuple[tuple[str, ...], list[str]]]:
    """(heading path, paragraph blocks) per section; a leading H1 is the title, not a path."""
    if not document.markdown:
        return [((), _paragraphs(document.body.splitlines()))]
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False
    first_heading = True

    def close() -> None:
        blocks = _paragraphs(lines)
        if blocks:
            sections.append((tuple(text for _, text in stack), blocks))
        lines.clear()

    for line in document.body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else MARKDOWN_HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        close()
        level, text = len(heading.group(1)), heading.group(2)
        is_title = first_heading and level == 1 and not sections
        first_heading = False
        while stack and stack[-1][0] >= level:
            stack.pop()
        if not is_title:
            stack.append((level, text))
    close()
    return sections


def _paragraphs(lines: list[str]) -> list[str]:
    """Blocks separated by blank lines; a fenced code block stays one block."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current).strip("\n"))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [block for block in blocks if block.strip()]


def _pack(blocks: list[str], budget: int, overlap_tokens: int) -> list[str]:
    """Greedily fill chunks with whole paragraphs (split only when one is too long); a new
    chunk of the same section repeats the last sentences of the previous one (overlap)."""
    # Long paragraphs are cut a little under budget so that the overlap still fits.
    piece_budget = max(budget - overlap_tokens, budget // 2)
    pieces = [piece for block in blocks for piece in _split_block(block, piece_budget)]
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        tokens = count_tokens(piece)
        if current and size + tokens > budget:
            chunks.append(current)
            tail = _tail(current[-1], overlap_tokens)
            current, size = ([tail], count_tokens(tail)) if tail else ([], 0)
            if current and size + tokens > budget:
                current, size = [], 0
        current.append(piece)
        size += tokens
    if current:
        chunks.append(current)
    return ["\n\n".join(chunk) for chunk in chunks]


def _tail(piece: str, overlap_tokens: int) -> str:
    """The last whole sentences of a prose piece, up to `overlap_tokens` (none for tables)."""
    if overlap_tokens <= 0 or _is_structured(piece):
        return ""
    tail: list[str] = []
    size = 0
    for sentence in reversed(_sentences(piece)):
        size += count_tokens(sentence)
        if size > overlap_tokens:
            break
        tail.insert(0, sentence)
    if len(tail) == len(_sentences(piece)):
        return ""  # the whole piece would repeat: no overlap rather than a duplicate
    return " ".join(tail)


def _split_block(block: str, budget: int) -> list[str]:
    """A paragraph that fits, or its lines (tables, lists, code) or sentences (prose) grouped
    to fit; a table keeps its header row in every part."""
    if count_tokens(block) <= budget:
        return [block]
    if _is_structured(block):
        lines = block.splitlines()
        header = lines[:2] if len(lines) > 2 and set(lines[1].strip()) <= set("|-: ") else []
        body = lines[len(header) :]
        header_text = "\n".join(header)
        inner = max(budget - count_tokens(header_text), 20)
        groups = _group(body, inner, "\n")
        return [f"{header_text}\n{g}" if header else g for g in groups]
    prose = " ".join(line.strip() for line in block.splitlines())
    return _group(_sentences(prose), budget, " ")


def _is_structured(block: str) -> bool:
    lines = block.splitlines()
    return bool(_FENCE.match(lines[0])) or (
        len(lines) > 1 and all(_STRUCTURED_LINE.match(line) for line in lines if line.strip())
    )


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _group(units: list[str], budget: int, joiner: str) -> list[str]:
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for unit in units:
        for part in _hard_split(unit, budget):
            tokens = count_tokens(part)
            if current and size + tokens > budget:
                groups.append(joiner.join(current))
                current, size = [], 0
            current.append(part)
            size += tokens
    if current:
        groups.append(joiner.join(current))
    return groups


def _hard_split(unit: str, budget: int) -> list[str]:
    """Last resort for one over-long sentence or line: windows of whitespace-separated words."""
    if count_tokens(unit) <= budget:
        return [unit]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for word in unit.split():
        tokens = count_tokens(word)
        if current and size + tokens > budget:
            parts.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += tokens
    if current:
        parts.append(" ".join(current))
    return parts
