"""RAG benchmark: retrieval quality on BEIR SciFact through the project's own ingestion and
search, next to a plain sentence-transformers brute-force baseline; embedding throughput;
search latency at 5k and 100k chunks. Writes benchmarks/results/rag_bench.md and .json.

    .venv/bin/python -m benchmarks.rag_bench          # fresh corpus: ~15k embeddings, 10-40 min
    .venv/bin/python -m benchmarks.rag_bench --reuse  # keep the corpus in benchmarks/.scratch

SciFact (CC BY-NC 2.0) is read from ../shared/benchmarks/scifact/ and never copied here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from assets.corpus.chunking import Chunk, chunk_documents  # noqa: E402
from assets.corpus.collection import collect_documents  # noqa: E402
from assets.corpus.retrieval import Retriever  # noqa: E402
from assets.corpus.store import build_corpus, open_table, sync_chunks  # noqa: E402
from pipelines import (
    embedding,  # noqa: E402
    onnx_embedding,  # noqa: E402
    warehouse,  # noqa: E402
)
from pipelines.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "scifact"
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "benchmarks" / ".scratch" / "rag"
DOCS_FILE = "scifact.jsonl"
MODES = ("dense", "fts", "hybrid")
SYNTHETIC_CHUNKS = 100_000
THROUGHPUT_DOCS = 1000
TARGETS = {"dense_gap": 0.01, "hybrid_min": 0.68, "throughput_ratio": 0.9}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rag_bench")
    parser.add_argument("--reuse", action="store_true", help="keep/reuse the corpus in scratch")
    parser.add_argument("--skip-100k", action="store_true", help="skip the 100k latency run")
    args = parser.parse_args(list(argv or []))
    started = time.perf_counter()
    docs, queries, qrels = load_scifact()
    home = SCRATCH / "scifact-home" if args.reuse else Path(tempfile.mkdtemp(prefix="rag-"))
    try:
        report = run(home, docs, queries, qrels, skip_100k=args.skip_100k)
    finally:
        if not args.reuse:
            shutil.rmtree(home, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_results(report)


def run(
    home: Path,
    docs: list[dict[str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    skip_100k: bool,
) -> dict[str, Any]:
    write_docs(home, docs)
    settings = Settings(home=home)
    onnx_embedding.session()  # loading is not embedding: keep it out of the timings
    print(f"[rag] ingesting {len(docs)} SciFact abstracts into {home} ...", flush=True)
    build_time, stats = timed(lambda: build_corpus(settings))
    query_ids = sorted(qrels, key=int)
    texts = [queries[q] for q in query_ids]

    print("[rag] baseline: plain SentenceTransformer.encode of every abstract ...", flush=True)
    plain = plain_model()
    doc_texts = [f"{d['title']} {d['text']}" for d in docs]
    _, doc_vectors = cached(home / "doc_vectors.npy", lambda: plain_encode(plain, doc_texts))
    query_vectors = plain_encode(plain, texts)

    runs = project_runs(home, texts)
    rankings = {mode: [[doc_key(r) for r in rs] for rs in runs[mode]] for mode in MODES}
    rankings["brute_force_docs"] = top_docs(query_vectors @ doc_vectors.T, [d["_id"] for d in docs])
    chunk_docs, chunk_vectors = stored_vectors(home)
    rankings["exact_stored_chunks"] = top_chunk_docs(
        np.stack(runs["vectors"]) @ chunk_vectors.T, chunk_docs
    )
    quality = {name: evaluate(ranked, query_ids, qrels) for name, ranked in rankings.items()}

    print(f"[rag] embedding throughput on {THROUGHPUT_DOCS} abstracts ...", flush=True)
    throughput = throughput_sample(docs[:THROUGHPUT_DOCS], plain)
    if stats.added:
        throughput["full_build"] = {
            "chunks_embedded": stats.added,
            "wall_seconds": round(build_time.wall, 1),
            "cpu_seconds": round(build_time.cpu, 1),
        }
    latency = {"5k": latency_at(home, texts, runs["vectors"])}
    if not skip_100k:
        latency["100k"] = synthetic_latency(docs, texts, runs["vectors"])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "corpus": {"documents": len(docs), "chunks": len(chunk_docs), "queries": len(query_ids)},
        "quality": quality,
        "throughput": throughput,
        "latency_ms": latency,
        "targets": check_targets(quality, throughput),
    }


def throughput_sample(docs: list[dict[str, str]], plain: Any) -> dict[str, Any]:
    """A fresh build of `docs` (its embedding step timed inside) next to a plain encode of
    the very chunks that build stores."""
    home = Path(tempfile.mkdtemp(prefix="rag-throughput-"))
    try:
        write_docs(home, docs)
        settings = Settings(home=home)
        texts = [
            c.text
            for c in chunk_documents(
                collect_documents(settings, lambda: warehouse.reader(settings.home)).documents
            )
        ]
        encode_time, _ = timed(lambda: plain_encode(plain, texts))
        embed = TimedEmbed()
        build_time, stats = timed(lambda: build_corpus(settings, embed_fn=embed))
        return throughput_report(len(texts), stats.added, embed.time, build_time, encode_time)
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- data ------------------------------------------------------------------------------------


def load_scifact() -> tuple[list[dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    if not SCIFACT.is_dir():
        raise SystemExit(f"SciFact is missing at {SCIFACT}; the benchmark reads it from shared/.")
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (SCIFACT / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels[query_id][doc_id] = int(score)
    return docs, queries, dict(qrels)


def write_docs(home: Path, docs: list[dict[str, str]]) -> None:
    """The corpus as a user would drop it: docs/*.jsonl with id, title, text per line."""
    (home / "docs").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": d["_id"], "title": d["title"], "text": d["text"]}) for d in docs]
    (home / "docs" / DOCS_FILE).write_text("\n".join(lines) + "\n")


def doc_key(result: Any) -> str:
    return result.doc_id.removeprefix(f"doc:{DOCS_FILE}:")


# --- the project's search and the baselines ------------------------------------------------------


def project_runs(home: Path, texts: list[str]) -> dict[str, Any]:
    """Top 100 documents per query for each mode, through `Retriever` (as `search_many`)."""
    retriever = Retriever.open(home)
    vectors = retriever.embed_queries(texts)
    runs: dict[str, Any] = {"vectors": vectors}
    for mode in MODES:
        runs[mode] = [
            retriever.search(text, vector, k=100, mode=mode)
            for text, vector in zip(texts, vectors, strict=True)
        ]
    return runs


def plain_model():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedding.model_dir()), device="cpu", local_files_only=True)
    plain_encode(model, ["warm up"])
    return model


def plain_encode(model: Any, texts: list[str]) -> np.ndarray:
    return model.encode(
        texts,
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32)


def top_docs(scores: np.ndarray, ids: list[str], k: int = 100) -> list[list[str]]:
    order = np.argsort(-scores, axis=1)[:, :k]
    return [[ids[i] for i in row] for row in order]


def stored_vectors(home: Path) -> tuple[list[str], np.ndarray]:
    """Document keys and vectors of every stored chunk, read back from the LanceDB table."""
    table = open_table(Settings(home=home).lancedb_dir)
    rows = table.search().select(["doc_id", "vector"]).limit(None).to_arrow()
    keys = [d.removeprefix(f"doc:{DOCS_FILE}:") for d in rows["doc_id"].to_pylist()]
    vectors = rows["vector"].combine_chunks().flatten().to_numpy().reshape(len(keys), -1)
    return keys, vectors


def top_chunk_docs(scores: np.ndarray, keys: list[str], k: int = 100) -> list[list[str]]:
    """Exact cosine ranking of chunks, best chunk per document."""
    rankings = []
    for row in np.argsort(-scores, axis=1):
        seen: dict[str, None] = {}
        for index in row:
            seen.setdefault(keys[index])
            if len(seen) == k:
                break
        rankings.append(list(seen))
    return rankings


def evaluate(
    rankings: list[list[str]], query_ids: list[str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    ndcg, recall = [], []
    for query_id, ranked in zip(query_ids, rankings, strict=True):
        relevant = qrels[query_id]
        gains = [relevant.get(doc, 0) for doc in ranked[:10]]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        ndcg.append(dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal)))
        recall.append(len(set(ranked[:100]) & set(relevant)) / len(relevant))
    return {
        "ndcg@10": round(float(np.mean(ndcg)), 4),
        "recall@100": round(float(np.mean(recall)), 4),
    }


# --- latency -------------------------------------------------------------------------------------


def latency_at(home: Path, texts: list[str], vectors: list[np.ndarray]) -> dict[str, Any]:
    """Per-query search time (query already embedded) for each mode, k=10."""
    retriever = Retriever.open(home)
    out: dict[str, Any] = {"chunks": retriever.table.count_rows()}
    for mode in MODES:
        times = []
        for text, vector in zip(texts, vectors, strict=True):
            began = time.perf_counter()
            retriever.search(text, vector, k=10, mode=mode)
            times.append((time.perf_counter() - began) * 1000)
        out[mode] = {"p50": pct(times, 50), "p95": pct(times, 95)}
    began = time.perf_counter()
    Retriever.embed_queries(texts)
    out["query_embedding_ms_per_query"] = round(
        (time.perf_counter() - began) * 1000 / len(texts), 2
    )
    return out


def synthetic_latency(
    docs: list[dict[str, str]], texts: list[str], vectors: list[np.ndarray]
) -> dict[str, Any]:
    """100k chunks stored through the same code path, with random unit vectors and text
    sampled from SciFact's vocabulary instead of embeddings (embedding 100k texts would take
    most of an hour here): latency is realistic, relevance is meaningless."""
    rng = np.random.default_rng(7)
    words = np.array(" ".join(d["text"] for d in docs[:2000]).split())
    chunks = []
    for i in range(SYNTHETIC_CHUNKS):
        text = " ".join(words[rng.integers(0, len(words), 80)])
        chunks.append(
            Chunk(f"{i:032x}", f"doc:synthetic:{i}", "doc", f"s{i}", "synthetic", None, text)
        )

    def random_vectors(batch: Sequence[str]) -> np.ndarray:
        v = rng.normal(size=(len(batch), embedding.EMBEDDING_DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    home = Path(tempfile.mkdtemp(prefix="rag-100k-"))
    try:
        print(f"[rag] storing {SYNTHETIC_CHUNKS} synthetic chunks ...", flush=True)
        began = time.perf_counter()
        sync_chunks(Settings(home=home).lancedb_dir, chunks, random_vectors)
        stored = round(time.perf_counter() - began, 1)
        result = latency_at(home, texts, vectors)
        result["store_seconds"] = stored
        return result
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- reporting -----------------------------------------------------------------------------------


def check_targets(quality: dict[str, dict], throughput: dict[str, Any]) -> dict[str, Any]:
    dense = quality["dense"]["ndcg@10"]
    fts = quality["fts"]["ndcg@10"]
    hybrid = quality["hybrid"]["ndcg@10"]
    brute = quality["brute_force_docs"]["ndcg@10"]
    ratio = throughput.get("cpu", {}).get("ratio_embedding")
    return {
        "dense_within_0.01_of_brute_force": dense >= brute - TARGETS["dense_gap"],
        "hybrid_at_least_max_dense_fts": hybrid >= max(dense, fts),
        "hybrid_at_least_0.68": hybrid >= TARGETS["hybrid_min"],
        "throughput_at_least_0.9x_plain": None if ratio is None else ratio >= 0.9,
    }


def write_results(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rag_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "rag_bench.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict[str, Any]) -> str:
    q, t, lat = r["quality"], r["throughput"], r["latency_ms"]
    names = {
        "dense": "eventpulse dense-only (LanceDB, flat cosine)",
        "fts": "eventpulse FTS-only (LanceDB BM25)",
        "hybrid": "eventpulse hybrid (RRF of both)",
        "brute_force_docs": "baseline: sentence-transformers brute force, title + text",
        "exact_stored_chunks": "check: exact cosine over the stored chunk vectors (numpy)",
    }
    lines = [
        "# RAG benchmark (SciFact, BEIR test split)",
        "",
        f"Run {r['date']} on {r['machine']}; {r['seconds']} s in all. "
        "Command: `.venv/bin/python -m benchmarks.rag_bench` (also part of `make bench`).",
        "",
        f"{r['corpus']['documents']} abstracts ingested as `docs/{DOCS_FILE}` (one line each: "
        f"id, title, text) into {r['corpus']['chunks']} chunks (the built-in glossary's "
        "included) by the project's own build "
        f"(`build_corpus`), {r['corpus']['queries']} test queries, `qrels/test.tsv`. "
        "Chunk text is `title` + blank line + a part of the abstract; a document's rank is "
        "that of its best chunk.",
        "",
        "| method | nDCG@10 | Recall@100 |",
        "| --- | --- | --- |",
        *[f"| {names[k]} | {v['ndcg@10']:.4f} | {v['recall@100']:.4f} |" for k, v in q.items()],
        "",
        "Published reference: BM25 nDCG@10 = 0.665 (BEIR paper, Table 2).",
        "",
        "## Embedding throughput",
        "",
        *throughput_lines(t),
        "",
        "## Search latency (ms per query, k = 10, query vector precomputed)",
        "",
        "| chunks | dense p50 / p95 | FTS p50 / p95 | hybrid p50 / p95 |",
        "| --- | --- | --- | --- |",
    ]
    for at in lat.values():
        cells = " | ".join(f"{at[m]['p50']} / {at[m]['p95']}" for m in MODES)
        lines.append(f"| {at['chunks']:,} | {cells} |")
    lines += [
        "",
        f"Embedding a query adds about {lat['5k']['query_embedding_ms_per_query']} ms "
        "(batched, as `search --queries-file` does). Vector search is exact (flat); "
        f"the {SYNTHETIC_CHUNKS:,}-chunk run uses random unit vectors and text sampled from "
        "SciFact words instead of embeddings, so its latency is real but its relevance is not.",
        "",
        "## Targets",
        "",
        *[f"- {name}: {'pass' if ok else 'FAIL' if ok is False else 'n/a'}"
          for name, ok in r["targets"].items()],
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def throughput_lines(t: dict[str, Any]) -> list[str]:
    if "cpu" not in t:
        return ["Not measured: the sample build embedded nothing."]
    rows = [
        ("eventpulse build, embedding step", "build_embedding_chunks_per_s"),
        ("eventpulse build, end to end (chunking, embedding, writes, FTS index)",
         "build_end_to_end_chunks_per_s"),
        ("plain `SentenceTransformer.encode`, the same chunks", "plain_encode_chunks_per_s"),
    ]  # fmt: skip
    full = t.get("full_build")
    whole = (
        f" The full build above embedded {full['chunks_embedded']} chunks in "
        f"{full['wall_seconds']} s wall, {full['cpu_seconds']} s CPU."
        if full
        else ""
    )
    return [
        f"A fresh build of the first {THROUGHPUT_DOCS} abstracts ({t['chunks']} chunks) next "
        f"to a plain encode of the same chunk texts (batch size 64 for both).{whole}",
        "",
        "| | chunks/s (wall) | chunks/s (CPU time) |",
        "| --- | --- | --- |",
        *[f"| {label} | {t['wall'][key]} | {t['cpu'][key]} |" for label, key in rows],
        "",
        f"Ratio to plain encode, embedding step: {t['cpu']['ratio_embedding']} by CPU time "
        f"({t['wall']['ratio_embedding']} by wall time); end to end: "
        f"{t['cpu']['ratio_end_to_end']} ({t['wall']['ratio_end_to_end']}). The target uses "
        "CPU time: the 2 cores are shared with other jobs, so wall time swings with their load.",
    ]


# --- small helpers -------------------------------------------------------------------------------


class TimedEmbed:
    """The project's document embedding (`onnx_embedding.embed_documents`, what the corpus
    uses), with its wall and CPU time summed."""

    def __init__(self) -> None:
        self.time = Timing(0.0, 0.0)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        spent, vectors = timed(lambda: onnx_embedding.embed_documents(texts))
        self.time = Timing(self.time.wall + spent.wall, self.time.cpu + spent.cpu)
        return vectors


@dataclass(frozen=True)
class Timing:
    """Wall seconds, and CPU seconds of this process (all threads): the machine's cores are
    shared with other jobs, which inflates wall time but hardly this process's CPU time."""

    wall: float
    cpu: float


def timed(function: Any) -> tuple[Timing, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), value


def cached(path: Path, compute: Any) -> tuple[Timing | None, np.ndarray]:
    """(timing, vectors); with --reuse a later run loads the vectors (and has no timing)."""
    if path.exists():
        return None, np.load(path)
    spent, value = timed(compute)
    np.save(path, value)
    return spent, value


def throughput_report(
    chunks: int, embedded: int, embed: Timing, build: Timing, encode: Timing | None
) -> dict[str, Any]:
    report: dict[str, Any] = {"chunks": chunks, "embedded_by_build": embedded}
    # Only a build that embedded every chunk, next to an encode that was run, compares.
    if embedded != chunks or encode is None:
        return report
    for clock in ("wall", "cpu"):
        plain = getattr(encode, clock)
        report[clock] = {
            "build_embedding_chunks_per_s": rate(chunks, getattr(embed, clock)),
            "build_end_to_end_chunks_per_s": rate(chunks, getattr(build, clock)),
            "plain_encode_chunks_per_s": rate(chunks, plain),
            "ratio_embedding": round(plain / getattr(embed, clock), 3),
            "ratio_end_to_end": round(plain / getattr(build, clock), 3),
        }
    return report


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 and count else None


def pct(values: list[float], q: int) -> float:
    return round(float(np.percentile(values, q)), 1)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f} at start of write-up"


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
