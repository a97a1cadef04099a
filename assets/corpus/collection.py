"""What the corpus should hold now: the documents of every source, collected in one pass.

Sources: the glossary, the user's `docs/`, the warehouse (through a connection the caller
opens) and the reports. Each is skipped when absent; an input that cannot be read becomes one
sentence in `Collection.problems`, and the other sources still make a useful corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assets.corpus.documents import Document, report_documents, user_documents
from assets.corpus.glossary import glossary_documents
from assets.corpus.report_sections import own_day_reports
from assets.corpus.summaries import WarehouseOpener, warehouse_documents_if_any
from pipelines.settings import Settings


@dataclass
class Collection:
    """Documents found now, plus one sentence per input that had to be skipped."""

    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def collect_documents(settings: Settings, open_warehouse: WarehouseOpener) -> Collection:
    """Every document the corpus should hold now; absent sources are skipped."""
    collection = Collection(documents=glossary_documents())
    collection.documents += user_documents(settings.docs_dir, collection.problems)
    collection.documents += warehouse_documents_if_any(open_warehouse, collection.problems)
    collection.documents += own_day_reports(report_documents(settings.reports_dir))
    collection.documents = _unique_doc_ids(collection.documents, collection.problems)
    return collection


def _unique_doc_ids(documents: list[Document], problems: list[str]) -> list[Document]:
    seen: set[str] = set()
    unique = []
    for document in documents:
        if document.doc_id in seen:
            problems.append(
                f"{document.source}: document id {document.doc_id!r} appears twice; "
                "kept the first, give the other line its own id."
            )
            continue
        seen.add(document.doc_id)
        unique.append(document)
    return unique
