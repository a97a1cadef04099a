"""Embeddings without torch: the packaged all-MiniLM-L6-v2 exported once to ONNX and run with
ONNX Runtime, for `eventpulse ask`'s questions and for every corpus build's documents, so none
pays the seconds torch takes to import (about 5-8 s of CPU on every daily corpus refresh).

The export is the same weights in fp32, giving the vectors sentence-transformers gives (within
1e-6; tests/pipelines/test_onnx_embedding.py); int8 would be faster but moves vectors to cosine
~0.97. Pooling is done here as sentence-transformers does it for this model: the mean of the
token vectors under the attention mask, then unit length. The tokenizer is the model's own
`tokenizer.json`, truncating at the model's `max_seq_length` (256), so both paths see the same
tokens.

Why it is fast (a year's corpus, 3,586 chunks of ~160 word pieces, is ~550k word pieces through
the model: benchmarks/results/corpus_bench.md):
- the export uses the model's plain ("eager") attention: the SDPA attention torch uses by
  default exports with masking guards (`Where`, `IsNaN`) that took ~17% of ONNX Runtime's time;
- texts run in small batches of similar length (longest first), on one thread per run: two
  texts at a time keep a layer's activations in the core's cache, and a single-threaded run
  never waits on a second thread (with `allow_spinning` off, every operator of a two-thread run
  paid a wake-up);
- runs go to one worker thread per core (ONNX Runtime releases the GIL while it runs), which
  keeps every core busy with whole runs instead.

The export is cached under `$EVENTPULSE_CACHE` (default `$XDG_CACHE_HOME/eventpulse`, else
`~/.cache/eventpulse`), keyed by the model's weights (size and modification time) and by
`EXPORT_VERSION`, and made again when missing; making it needs torch once (a few seconds),
reading it never does.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.embedding import EMBEDDING_DIM, model_dir

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Part of the export's file name: a change to how the export is made (v2: eager attention) makes
# every cache make it again instead of running the older graph.
EXPORT_VERSION = 2


def cache_dir() -> Path:
    explicit = os.environ.get("EVENTPULSE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eventpulse"


def onnx_path() -> Path:
    """Where the export of the installed model lives (named after its weights file)."""
    weights = model_dir() / "model.safetensors"
    stat = weights.stat()
    name = f"all-MiniLM-L6-v2-{stat.st_size}-{int(stat.st_mtime)}-v{EXPORT_VERSION}.onnx"
    return cache_dir() / "onnx" / name


def ensure_export() -> Path:
    """The cached export, made now when it is missing."""
    path = onnx_path()
    if not path.is_file():
        export(path)
    return path


def export(path: Path) -> None:
    """Export the transformer of the packaged model to `path` (written whole, then renamed, so a
    killed export never leaves a half file that later runs would load)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()  # "Loading weights" is not the user's business

    # The weights sentence-transformers loads for this model, with the plain attention: torch's
    # SDPA exports with masking guards that cost ONNX Runtime ~17% of its time (module doc).
    transformer = AutoModel.from_pretrained(
        str(model_dir()), attn_implementation="eager", local_files_only=True
    ).eval()
    # Two texts of different lengths: the traced graph must apply the padding mask (a batch
    # without padding may let the model skip it).
    sample = encode(["an example sentence", "a second, somewhat longer example sentence"])
    inputs = tuple(torch.tensor(sample[name]) for name in INPUT_NAMES)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx.part", delete=False) as part:
        part_path = Path(part.name)
    try:
        # The exporter's tracer warnings are about control flow this model does not take.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(transformer),
                inputs,
                str(part_path),
                input_names=list(INPUT_NAMES),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
                | {"last_hidden_state": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        part_path.replace(path)
    finally:
        part_path.unlink(missing_ok=True)


class _LastHiddenState:
    """Wraps the HF model so the export has one plain tensor output."""

    def __new__(cls, transformer: Any) -> Any:
        import torch

        class Module(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.transformer(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        return Module()


@functools.cache
def tokenizer() -> Any:
    """The model's fast tokenizer, truncating at max_seq_length; batches are padded here."""
    from tokenizers import Tokenizer

    folder = model_dir()
    max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()  # tokenizer.json pads every text to 128; a batch pads to its longest
    return tok


def model_inputs(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of encoded texts, padded with [PAD] to the longest."""
    width = max(len(encoding.ids) for encoding in encodings)
    inputs = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUT_NAMES}
    inputs["input_ids"][:] = tokenizer().token_to_id("[PAD]")
    for row, encoding in enumerate(encodings):
        tokens = len(encoding.ids)
        inputs["input_ids"][row, :tokens] = encoding.ids
        inputs["attention_mask"][row, :tokens] = encoding.attention_mask
        inputs["token_type_ids"][row, :tokens] = encoding.type_ids
    return inputs


def encode(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's inputs for `texts` as one batch."""
    return model_inputs(tokenizer().encode_batch(list(texts)))


@functools.cache
def session() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    # One thread per run; `embed` runs batches on several threads at once instead (module doc).
    options.intra_op_num_threads = 1
    # Idle worker threads that spin burn a core each while waiting for work: on a shared
    # machine that halves the throughput of everything else.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(ensure_export()), options, providers=["CPUExecutionProvider"]
    )


def worker_count() -> int:
    """Runs at once: one per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# Documents per run: two texts of similar length (a year's corpus of report chunks: 31.8 texts
# per CPU second in twos, 30.5 one by one, 27.1 in eights, 22.9 in sixteens, single-threaded;
# benchmarks/results/corpus_bench.md).
DOCUMENT_BATCH = 2


def embed_documents(texts: Sequence[str]) -> np.ndarray:
    """Corpus chunks' vectors (the vectors sentence-transformers gives, within 1e-6)."""
    return embed(texts, batch_size=DOCUMENT_BATCH)


def embed(texts: Sequence[str], batch_size: int = 1) -> np.ndarray:
    """Unit-length float32 vectors, one row per text, in the corpus's vector space.

    One text per run by default: padding a batch to its longest text costs more than the runs
    it saves (17 sentences of an answer: 0.26 s of CPU one by one, 0.35 s in fours, 0.87 s in
    one batch)."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    run = session()
    encodings = tokenizer().encode_batch(list(texts))
    # Longest first, in batches of similar length: a batch is padded to its longest text.
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    vectors = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)

    def embed_batch(batch: list[int]) -> None:
        inputs = model_inputs([encodings[i] for i in batch])
        hidden = run.run(None, inputs)[0]
        vectors[batch] = mean_pooled(hidden, inputs["attention_mask"])

    workers = min(worker_count(), len(batches))
    if workers == 1:
        for batch in batches:
            embed_batch(batch)
    else:
        # Each batch writes its own rows; list() re-raises the first error of any batch.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(embed_batch, batches))
    return vectors


def mean_pooled(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pooling for this model: mean over real tokens, unit length."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.clip(norms, 1e-12, None)
