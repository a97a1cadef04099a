"""Stage: corpus — the LanceDB RAG corpus behind `eventpulse ask` and `search` (CONTRACT §4)."""

from pathlib import Path

import dagster as dg

from assets.corpus.store import build_corpus
from pipelines.previews import markdown_rows
from pipelines.progress import embed_with_progress
from pipelines.resources import Corpus, Embedder, Warehouse


@dg.asset(
    group_name="corpus",
    kinds={"lancedb"},
    # Only sources that are assets; reports and docs/ are read as files when they exist.
    deps=["anomalies", "funnel_steps", "funnel_daily", "cohorts", "daily_report", "weekly_report"],
)
def corpus(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    corpus: Corpus,  # the resource shares the asset's name: Dagster binds by parameter name
    embedder: Embedder,
) -> dg.MaterializeResult:
    """Reports, flagged anomalies, weekly funnel and cohort summaries, the glossary and
    `docs/`, chunked along headings and embedded with all-MiniLM-L6-v2; only new or changed
    chunks are embedded, chunks of vanished documents are deleted. A daily report gives its
    own day (report_sections.py), so a day's refresh embeds about one report's chunks."""
    stats = build_corpus(
        warehouse.settings(),
        lancedb_dir=Path(corpus.path),
        embed_fn=embed_with_progress(embedder.embed, context.log.info),
        open_warehouse=warehouse.reader,
    )
    for problem in stats.problems:
        context.log.warning(problem)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.total,
            "chunks_added": stats.added,
            "chunks_unchanged": stats.unchanged,
            "chunks_removed": stats.removed,
            "documents": stats.documents,
            "kinds": dg.MetadataValue.json(stats.kinds),
            "embed_seconds": round(stats.embed_seconds, 2),
            "preview": dg.MetadataValue.md(markdown_rows(["kind", "chunks"], stats.kinds.items())),
        }
    )
