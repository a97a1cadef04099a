"""The ONNX Runtime export of all-MiniLM-L6-v2 gives sentence-transformers' (torch's) vectors, for
questions one by one and for corpus documents in batches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines import embedding, onnx_embedding

TEXTS = [
    "What happened on 2026-11-18?",
    "Why did revenue drop last week?",
    "Android purchases fell by a third after release 4.2 moved the buy button.",
    "x",
    "A much longer passage about conversion rates and retention cohorts. " * 40,  # > 256 tokens
]


def test_onnx_vectors_are_within_cosine_0999_of_torch() -> None:
    ours = onnx_embedding.embed(TEXTS)
    torch_vectors = embedding.embed(TEXTS)
    assert ours.shape == torch_vectors.shape == (len(TEXTS), embedding.EMBEDDING_DIM)
    assert ours.dtype == np.float32
    cosine = (ours * torch_vectors).sum(axis=1)
    assert cosine.min() >= 0.999, cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_document_batches_give_the_vectors_of_one_text_at_a_time_and_of_torch() -> None:
    """Padding in a batch must not move a vector: 11 texts of mixed length in batches."""
    texts = TEXTS + [f"report chunk {n}: " + "active users rose " * (n * 7) for n in range(6)]
    documents = onnx_embedding.embed_documents(texts)
    assert np.abs(documents - onnx_embedding.embed(texts)).max() < 1e-5
    assert ((documents * embedding.embed(texts)).sum(axis=1)).min() >= 0.999


def test_runs_on_several_threads_give_the_vectors_of_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches run on worker threads at once: each must land in its own texts' rows."""
    texts = [f"{n} users converted on day {n}" + " and more" * (n % 9) for n in range(23)]
    monkeypatch.setattr(onnx_embedding, "worker_count", lambda: 1)
    alone = onnx_embedding.embed_documents(texts)
    monkeypatch.setattr(onnx_embedding, "worker_count", lambda: 3)
    threaded = onnx_embedding.embed_documents(texts)
    assert np.array_equal(alone, threaded)
    assert ((threaded * embedding.embed(texts)).sum(axis=1)).min() >= 0.999


def test_a_missing_export_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTPULSE_CACHE", str(tmp_path))
    onnx_embedding.session.cache_clear()
    try:
        path = onnx_embedding.onnx_path()
        assert not path.exists()
        vectors = onnx_embedding.embed(["a question"])
        assert path.is_file() and not list(path.parent.glob("*.part"))
        assert float(vectors[0] @ embedding.embed(["a question"])[0]) >= 0.999
    finally:
        onnx_embedding.session.cache_clear()


def test_embedding_a_query_does_not_import_torch() -> None:
    onnx_embedding.ensure_export()  # made beforehand, as the first corpus question does
    code = (
        "import sys; from pipelines import onnx_embedding; onnx_embedding.embed(['hi']); "
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
