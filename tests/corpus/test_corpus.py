"""RAG corpus (CONTRACT §4): documents, chunking, incremental builds and hybrid retrieval."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assets.corpus.assets import corpus as corpus_asset
from assets.corpus.chunking import chunk_document, count_tokens
from assets.corpus.collection import collect_documents
from assets.corpus.documents import Document, user_documents
from assets.corpus.retrieval import Filters, query_results_json, question_dates, search, search_many
from assets.corpus.store import build_corpus, open_table, stored_chunk_ids
from assets.corpus.summaries import warehouse_documents
from pipelines import warehouse
from pipelines.resources import Corpus, Embedder, Warehouse
from pipelines.settings import Settings

INCIDENT_DAY = dt.date(2026, 3, 12)
INCIDENT_DOC = "anomaly:2026-03-12:purchasers:platform:android"


class CountingEmbedder:
    """Deterministic stand-in vectors (from a text hash) that records what was embedded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += list(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).normal(size=384).astype(np.float32)
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows, dtype=np.float32).reshape(len(texts), 384)


def write_docs(home: Path) -> None:
    docs = home / "docs"
    (docs / "guides").mkdir(parents=True, exist_ok=True)
    (docs / "changelog.md").write_text(
        "# Changelog\n\n"
        "## 2026-03-11 Android app 4.2\n\n"
        "Release 4.2 of the Android app moved the buy button below the fold.\n\n"
        "## 2026-02-02 Pricing page\n\n"
        "The pricing page got a new layout with annual plans listed first.\n"
    )
    (docs / "guides" / "onboarding.txt").write_text(
        "New users see a three-step onboarding tour.\n\nThe tour can be skipped."
    )
    lines = [
        {"id": "refunds", "title": "Refunds", "text": "Refunds are issued within 14 days."},
        {"id": "shipping", "title": "Shipping", "text": "Orders ship within two days."},
    ]
    (docs / "faq.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def write_warehouse(home: Path) -> None:
    """daily_metrics, anomalies, funnel_daily, funnel_steps and cohorts with contract columns;
    the planted incident: android purchasers 12 instead of about 40 on 2026-03-12."""
    conn = warehouse.connect(home / "warehouse.duckdb")
    try:
        conn.execute(
            "create table daily_metrics (metric_date date, dimension varchar, segment varchar, "
            "active_users bigint, new_users bigint, sessions bigint, events bigint, "
            "purchasers bigint, revenue double, conversion_rate double)"
        )
        segments = [("all", "all"), ("platform", "android"), ("platform", "ios")]
        for offset in range(45):
            day = dt.date(2026, 2, 1) + dt.timedelta(days=offset)
            for dimension, segment in segments:
                buyers = 12 if (day, segment) == (INCIDENT_DAY, "android") else 40
                conn.execute(
                    "insert into daily_metrics values (?, ?, ?, 500, 50, 700, 5000, ?, ?, ?)",
                    [day, dimension, segment, buyers, buyers * 31.5, buyers / 500],
                )
        conn.execute(
            "create table anomalies (metric_date date, metric varchar, dimension varchar, "
            "segment varchar, value double, expected double, score double, is_anomaly boolean, "
            "direction varchar, explanation varchar)"
        )
        conn.executemany(
            "insert into anomalies values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (INCIDENT_DAY, "purchasers", "platform", "android", 12, 40, 0.95, True, "dip",
                 "purchasers for platform android was 12, expected 40 (-70.0%)."),
                (dt.date(2026, 2, 10), "purchasers", "platform", "android", 70, 40, 0.9, True,
                 "spike", "purchasers for platform android was 70, expected 40 (+75.0%)."),
                (INCIDENT_DAY, "revenue", "platform", "ios", 5000, 1260, 0.8, True, "spike",
                 "revenue for platform ios was 5,000.00, expected 1,260.00 (+296.8%)."),
                (dt.date(2026, 3, 13), "events", "all", "all", 5100, 5000, 0.1, False, "spike",
                 "events for all users was 5,100, expected 5,000 (+2.0%)."),
            ],
        )  # fmt: skip
        conn.execute(
            "create table funnel_daily (funnel varchar, entry_date date, step_index integer, "
            "step varchar, users bigint, is_complete boolean)"
        )
        steps = [("page_view", 100), ("signup", 40), ("purchase", 8)]
        last_event_date = dt.date(2026, 2, 1) + dt.timedelta(days=44)
        for offset in range(10):
            day = dt.date(2026, 3, 2) + dt.timedelta(days=offset)
            for index, (step, users) in enumerate(steps, start=1):
                conn.execute(
                    "insert into funnel_daily values ('checkout', ?, ?, ?, ?, ?)",
                    [day, index, step, users, day + dt.timedelta(days=7) <= last_event_date],
                )
        conn.execute(
            "create table funnel_steps (funnel varchar, dimension varchar, segment varchar, "
            "step_index integer, step varchar, users bigint, conversion_from_first double, "
            "conversion_from_previous double, median_seconds_from_previous double, "
            "avg_seconds_from_previous double)"
        )
        conn.executemany(
            "insert into funnel_steps values ('checkout', 'all', 'all', ?, ?, ?, ?, ?, ?, ?)",
            [(1, "page_view", 1000, 1.0, 1.0, None, None), (2, "signup", 400, 0.4, 0.4, 600, 700),
             (3, "purchase", 80, 0.08, 0.2, 3600, 4000)],
        )  # fmt: skip
        conn.execute(
            "create table cohorts (cohort_granularity varchar, cohort_start date, "
            "dimension varchar, segment varchar, cohort_users bigint, period_index integer, "
            "active_users bigint, retention_rate double, churn_rate double, revenue double, "
            "cumulative_revenue double, ltv double, is_complete boolean)"
        )
        for week in range(3):
            start = dt.date(2026, 2, 2) + dt.timedelta(weeks=week)
            for period in range(5 - week):
                rate = 1.0 if period == 0 else 0.4 - 0.05 * period
                conn.execute(
                    "insert into cohorts values ('week', ?, 'channel', 'ads', 200, ?, ?, ?, ?, "
                    "?, ?, ?, true)",
                    [start, period, int(200 * rate), rate, 1 - rate, 10.0, 10.0 * (period + 1),
                     10.0 * (period + 1) / 200],
                )  # fmt: skip
    finally:
        conn.close()


def write_report(home: Path) -> None:
    daily = home / "reports" / "daily"
    daily.mkdir(parents=True, exist_ok=True)
    (daily / "2026-03-12.md").write_text(
        "# Daily report — 2026-03-12\n\n"
        "## Headline metrics\n\n- Active users 2,000 (+1.0% vs previous day)\n\n"
        "## Anomalies\n\n- purchasers for platform android was 12, expected 40 (-70.0%).\n\n"
        "![chart](2026-03-12/anomaly-1.png)\n"
    )


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with every source kind, built once with the real model."""
    home = tmp_path_factory.mktemp("corpus") / "home"
    home.mkdir()
    write_docs(home)
    write_warehouse(home)
    write_report(home)
    build_corpus(Settings(home=home))
    return home


# --- documents and chunking -------------------------------------------------------------------


def test_chunks_never_cross_a_heading_and_name_their_section() -> None:
    long_section = " ".join(f"Sentence {i} is about android checkout failures." for i in range(90))
    body = (
        "# Guide\n\nIntro.\n\n## Setup\n\nInstall it.\n\n## Troubleshooting\n\n"
        f"{long_section}\n\n### Logs\n\n```\n# not a heading\n```\n"
    )
    chunks = chunk_document(
        Document("doc:guide.md", "doc", "Guide", "docs/guide.md", None, body, True)
    )

    titles = [chunk.title for chunk in chunks]
    assert titles[:2] == ["Guide", "Guide › Setup"]
    assert titles[-1] == "Guide › Troubleshooting › Logs"
    troubleshooting = [c for c in chunks if c.title == "Guide › Troubleshooting"]
    assert len(troubleshooting) >= 3  # long section split near the token budget
    assert all(count_tokens(c.text) <= 320 for c in chunks)
    for chunk in chunks:
        assert chunk.text.startswith(chunk.title + "\n\n")
        assert ("Install it" in chunk.text) == (chunk.title == "Guide › Setup")
    assert "# not a heading" in chunks[-1].text  # a '#' inside a code fence is not a heading
    # Consecutive parts of one section overlap by their boundary sentence(s).
    first, second = troubleshooting[0].text, troubleshooting[1].text
    assert first.rstrip().split(". ")[-1] in second


def test_chunk_ids_are_content_hashes_stable_across_runs() -> None:
    document = Document("doc:a.md", "doc", "A", "docs/a.md", None, "Alpha.\n\nBeta.", False)
    again = chunk_document(document)
    assert [c.chunk_id for c in chunk_document(document)] == [c.chunk_id for c in again]
    changed = chunk_document(dataclasses.replace(document, body="Alpha.\n\nGamma."))
    assert changed[0].chunk_id != again[0].chunk_id


def test_user_docs_md_txt_and_jsonl_lines_become_documents(tmp_path: Path) -> None:
    write_docs(tmp_path)
    (tmp_path / "docs" / "faq.jsonl").write_text(
        json.dumps({"id": "a", "title": "A", "text": "Alpha."}) + "\nnot json\n"
    )
    problems: list[str] = []
    documents = {d.doc_id: d for d in user_documents(tmp_path / "docs", problems)}

    assert set(documents) == {"doc:changelog.md", "doc:guides/onboarding.txt", "doc:faq.jsonl:a"}
    assert documents["doc:changelog.md"].title == "Changelog"
    assert documents["doc:faq.jsonl:a"].source == "docs/faq.jsonl"
    assert problems == ["docs/faq.jsonl line 2: not valid JSON; skipped."]
    # A changelog section headed by a date is dated by it.
    dated = chunk_document(documents["doc:changelog.md"])
    assert [c.date for c in dated] == [dt.date(2026, 3, 11), dt.date(2026, 2, 2)]


def test_a_doc_linked_from_outside_docs_is_not_read(tmp_path: Path) -> None:
    write_docs(tmp_path)
    key = tmp_path / "api-key.txt"
    key.write_text("sk-secret-key")
    (tmp_path / "docs" / "key.txt").symlink_to(key)
    problems: list[str] = []
    documents = user_documents(tmp_path / "docs", problems)
    assert all("sk-secret-key" not in d.body for d in documents)
    assert problems == ["docs/key.txt: a symbolic link to a file outside docs/; not read."]


def test_warehouse_documents_per_flagged_anomaly_with_neighbouring_days(tmp_path: Path) -> None:
    write_warehouse(tmp_path)
    conn = warehouse.connect(tmp_path / "warehouse.duckdb", read_only=True)
    try:
        documents = {d.doc_id: d for d in warehouse_documents(conn)}
    finally:
        conn.close()

    anomalies = sorted(i for i in documents if i.startswith("anomaly:"))
    assert anomalies == [
        "anomaly:2026-02-10:purchasers:platform:android",
        INCIDENT_DOC,
        "anomaly:2026-03-12:revenue:platform:ios",
    ]  # the unflagged events row is not a document
    incident = documents[INCIDENT_DOC]
    assert incident.kind == "anomaly" and incident.date == INCIDENT_DAY
    assert "expected 40" in incident.body and "2026-03-11 40, 2026-03-12 12" in incident.body
    assert "funnel:checkout:2026-W10" in documents and "funnel:checkout:overall" in documents
    assert "8.0% of entrants" in documents["funnel:checkout:2026-W10"].body
    assert "cohort:week:2026-02-02" in documents and "cohort:week:channel:ads" in documents
    assert "Week-4 retention" in documents["cohort:week:channel:ads"].body


def test_absent_sources_are_skipped_leaving_the_glossary(tmp_path: Path) -> None:
    collection = collect_documents(Settings(home=tmp_path), lambda: warehouse.reader(tmp_path))
    kinds = {d.kind for d in collection.documents}
    assert kinds == {"glossary"}
    terms = {d.doc_id for d in collection.documents}
    assert {"glossary:conversion_rate", "glossary:cohorts", "glossary:anomalies"} <= terms


def test_a_warehouse_table_that_cannot_be_read_is_reported_and_skipped(tmp_path: Path) -> None:
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        conn.execute("create table cohorts (cohort_start date)")  # columns missing
    finally:
        conn.close()
    collection = collect_documents(Settings(home=tmp_path), lambda: warehouse.reader(tmp_path))
    assert {d.kind for d in collection.documents} == {"glossary"}
    assert collection.problems[0].startswith("warehouse table cohorts: unreadable")


# --- incremental builds -------------------------------------------------------------------------


def test_two_builds_at_once_store_every_chunk_once(tmp_path: Path) -> None:
    import threading

    write_docs(tmp_path)
    settings = Settings(home=tmp_path)
    builds = [
        threading.Thread(
            target=build_corpus, args=(settings,), kwargs={"embed_fn": CountingEmbedder()}
        )
        for _ in range(2)
    ]
    for build in builds:
        build.start()
    for build in builds:
        build.join(timeout=120)
    table = open_table(tmp_path / "lancedb")
    assert table.count_rows() == len(stored_chunk_ids(table)) > 0


def test_a_chunk_stored_twice_is_kept_once_by_the_next_build(tmp_path: Path) -> None:
    write_docs(tmp_path)
    settings = Settings(home=tmp_path)
    first = build_corpus(settings, embed_fn=CountingEmbedder())
    table = open_table(tmp_path / "lancedb")
    table.add(table.search().limit(2).to_arrow().select(table.schema.names))  # two copies
    assert table.count_rows() == first.total + 2
    again = build_corpus(settings, embed_fn=CountingEmbedder())
    assert again.total == first.total == open_table(tmp_path / "lancedb").count_rows()


def test_rebuild_embeds_only_new_or_changed_chunks_and_deletes_vanished_ones(
    tmp_path: Path,
) -> None:
    write_docs(tmp_path)
    settings = Settings(home=tmp_path)
    embedder = CountingEmbedder()
    first = build_corpus(settings, embed_fn=embedder)
    assert first.added == first.total == len(embedder.calls) > 0

    embedder.calls.clear()
    second = build_corpus(settings, embed_fn=embedder)
    assert (second.added, second.removed, second.unchanged) == (0, 0, first.total)
    assert embedder.calls == []

    (tmp_path / "docs" / "guides" / "onboarding.txt").write_text("The tour is now optional.")
    third = build_corpus(settings, embed_fn=embedder)
    assert third.added == third.removed == 1
    assert len(embedder.calls) == 1 and "The tour is now optional." in embedder.calls[0]

    (tmp_path / "docs" / "faq.jsonl").unlink()
    fourth = build_corpus(settings, embed_fn=embedder)
    assert (fourth.added, fourth.removed, fourth.total) == (0, 2, first.total - 2)
    table = open_table(settings.lancedb_dir)
    doc_ids = set(table.search().select(["doc_id"]).limit(None).to_arrow()["doc_id"].to_pylist())
    assert not any(d.startswith("doc:faq.jsonl") for d in doc_ids)


def test_stored_vector_is_the_embedding_of_the_stored_text(corpus_home: Path) -> None:
    from pipelines.embedding import embed

    table = open_table(Settings(home=corpus_home).lancedb_dir)
    rows = table.search().select(["text", "vector"]).limit(3).to_list()
    vectors = embed([row["text"] for row in rows])
    assert np.allclose(np.array([row["vector"] for row in rows]), vectors, atol=1e-5)


# --- retrieval -------------------------------------------------------------------------------------


def test_hybrid_search_finds_the_planted_anomaly(corpus_home: Path) -> None:
    questions = [
        "what happened to android purchases on March 12?",
        "android purchasers drop 2026-03-12",
        "Why did purchases fall on android on 12 March?",
    ]
    for results in search_many(corpus_home, questions, k=5):
        assert INCIDENT_DOC in [r.doc_id for r in results]
    # The other android purchasers anomaly wins when its own date is asked for.
    top = search(corpus_home, "android purchasers on February 10", k=1)
    assert top[0].doc_id == "anomaly:2026-02-10:purchasers:platform:android"


def test_search_filters_by_kind_and_date_range(corpus_home: Path) -> None:
    anomalies = search(corpus_home, "android", k=10, filters=Filters(kinds=("anomaly",)))
    assert anomalies and {r.kind for r in anomalies} == {"anomaly"}
    march = Filters(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    dated = search(corpus_home, "purchasers", k=10, filters=march)
    assert dated and all(r.date and r.date.month == 3 for r in dated)


def test_dense_fts_and_hybrid_modes_and_one_result_per_document(corpus_home: Path) -> None:
    for mode in ("dense", "fts", "hybrid"):
        results = search(corpus_home, "refund policy", k=5, mode=mode)
        assert results[0].doc_id == "doc:faq.jsonl:refunds", mode
        assert len({r.doc_id for r in results}) == len(results)


def test_search_json_lines_follow_the_contract(corpus_home: Path) -> None:
    line = query_results_json("refunds", search(corpus_home, "refunds", k=2))
    assert list(line) == ["query", "results"] and len(line["results"]) == 2
    assert set(line["results"][0]) == {
        "doc_id", "chunk_id", "kind", "title", "date", "score", "text"
    }  # fmt: skip
    assert line["results"][0]["chunk_id"] in stored_chunk_ids(
        open_table(Settings(home=corpus_home).lancedb_dir)
    )
    json.dumps(line)  # dates are ISO strings, scores floats


def test_a_date_in_the_question_is_read_with_the_corpus_year() -> None:
    corpus_range = lambda: (dt.date(2025, 12, 1), dt.date(2026, 3, 31))  # noqa: E731
    assert question_dates("android on March 12?", corpus_range)[2] == dt.date(2026, 3, 12)
    assert question_dates("on 3rd of December", corpus_range)[2] == dt.date(2025, 12, 3)
    assert question_dates("revenue 2026-03-12", corpus_range)[:2] == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 15),
    )
    assert question_dates("funnel in 2026-W11")[:2] == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    assert question_dates("purchases on 3/12", corpus_range)[2] == dt.date(2026, 3, 12)
    assert question_dates("how is retention trending?", corpus_range) is None


# --- asset ------------------------------------------------------------------------------------------


def test_corpus_asset_reports_added_unchanged_removed(corpus_home: Path) -> None:
    resources = {
        "warehouse": Warehouse(home=str(corpus_home)),
        "corpus": Corpus(home=str(corpus_home)),
        "embedder": Embedder(),
    }
    result = dg.materialize([corpus_asset], resources=resources)
    assert result.success
    metadata = result.asset_materializations_for_node("corpus")[0].metadata
    assert metadata["chunks_added"].value == 0  # the fixture built it already
    assert metadata["chunks_unchanged"].value == metadata["dagster/row_count"].value > 0
    assert metadata["kinds"].value["anomaly"] == 3
