"""Embeddings without torch: the packaged all-MiniLM-L6-v2 exported once to ONNX and run with
ONNX Runtime, for `eventpulse ask`'s questions and a corpus refresh's documents, so neither pays
the seconds torch takes to import (about 5-8 s of CPU on every daily corpus refresh before);
a large corpus build still embeds with torch, faster per text (`embed_documents`).

The export is the same weights in fp32, giving the vectors sentence-transformers gives (within
1e-7; tests/pipelines/test_onnx_embedding.py); int8 would be faster but moves vectors to cosine
~0.97. Pooling is done here as
sentence-transformers does it for this model: the mean of the token vectors under the attention
mask, then unit length. The tokenizer is the model's own `tokenizer.json`, truncating at the
model's `max_seq_length` (256), so both paths see the same tokens.

The export is cached under `$EVENTPULSE_CACHE` (default `$XDG_CACHE_HOME/eventpulse`, else
`~/.cache/eventpulse`), keyed by the model's weights (size and modification time), and made again
when missing; making it needs torch once (a few seconds), reading it never does.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.embedding import EMBEDDING_DIM, model_dir

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


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
    return cache_dir() / "onnx" / f"all-MiniLM-L6-v2-{stat.st_size}-{int(stat.st_mtime)}.onnx"


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

    from pipelines.embedding import load_model

    transformer = load_model()[0].auto_model.eval()
    sample = tokenizer()(["an example sentence"])
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
    """The model's fast tokenizer: truncates at max_seq_length, pads a batch to its longest."""
    from tokenizers import Tokenizer

    folder = model_dir()
    max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")

    def encode(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = tok.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    return encode


@functools.cache
def session() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    # Idle worker threads that spin burn a core each while waiting for work: on a shared
    # machine that halves the throughput of everything else for no gain on a few sentences.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(ensure_export()), options, providers=["CPUExecutionProvider"]
    )


# Documents per run: texts sorted by length pad little in eights (200 report chunks: 4.7 s CPU
# in eights, 4.8 s one by one, 6.9 s in 32s).
DOCUMENT_BATCH = 8
# From this many texts on, torch's batched encoder is the cheaper one: it embeds long texts
# ~15% faster (SciFact abstracts: 16.8 against 14.4 chunks per CPU second), which pays back the
# 5-8 s of CPU its import takes at about 600 texts. A daily refresh embeds far fewer.
TORCH_FROM_TEXTS = 600


def embed_documents(texts: Sequence[str]) -> np.ndarray:
    """Corpus chunks' vectors: with ONNX Runtime for a refresh's few texts, with
    sentence-transformers for a large build (the same vectors within 1e-7 either way)."""
    if len(texts) >= TORCH_FROM_TEXTS:
        from pipelines.embedding import embed as embed_with_torch

        return embed_with_torch(texts)
    return embed(texts, batch_size=DOCUMENT_BATCH)


def embed(texts: Sequence[str], batch_size: int = 1) -> np.ndarray:
    """Unit-length float32 vectors, one row per text, in the corpus's vector space.

    One text per run by default: padding a batch to its longest text costs more than the runs
    it saves (17 sentences of an answer: 0.26 s of CPU one by one, 0.35 s in fours, 0.87 s in
    one batch)."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    run = session()
    encode = tokenizer()
    # Longest first, in batches of similar length: a batch is padded to its longest text.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        inputs = encode([texts[i] for i in batch])
        hidden = run.run(None, inputs)[0]
        mask = inputs["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors[batch] = pooled / np.clip(norms, 1e-12, None)
    return vectors
