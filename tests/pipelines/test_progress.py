"""Progress on long work and no Dagster beta/preview noise in the user's terminal (issue 16 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import dagster as dg
import numpy as np
import pytest

from pipelines import progress
from pipelines.progress import embed_with_progress, progress_logger


def _fake_embed(texts: Sequence[str]) -> np.ndarray:
    return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_embedding_in_slices_reports_progress_and_gives_the_same_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "PROGRESS_BATCH", 4)
    texts = [f"text {'a' * n}" for n in range(10)]
    lines: list[str] = []
    vectors = embed_with_progress(_fake_embed, lines.append)(texts)
    assert np.array_equal(vectors, _fake_embed(texts))
    assert lines == [
        "embedded 4 of 10 chunks",
        "embedded 8 of 10 chunks",
        "embedded 10 of 10 chunks",
    ]
    assert embed_with_progress(_fake_embed, lines.append)(texts[:3]).shape == (3, 2)
    assert len(lines) == 3  # a small call prints nothing


def test_run_prints_each_finished_step_out_of_all(capfd: pytest.CaptureFixture[str]) -> None:
    @dg.op
    def first() -> int:
        return 1

    @dg.op
    def second(value: int) -> int:
        dg.get_dagster_logger().info("halfway")
        return value + 1

    @dg.job(logger_defs={"progress": progress_logger})
    def two_steps() -> None:
        second(first())

    result = two_steps.execute_in_process(
        run_config={"loggers": {"progress": {"config": {"steps": 2}}}}
    )
    assert result.success
    lines = [line.split(" ", 1)[1] for line in capfd.readouterr().out.splitlines()]
    assert "[1/2] first done" in lines
    assert "[2/2] second done" in lines
    assert "second: halfway" in lines
    assert not any("STEP_START" in line or "started" in line for line in lines)


def test_dagster_beta_and_preview_warnings_are_silenced_and_others_are_not() -> None:
    code = "import warnings, pipelines.definitions\nwarnings.warn('something else to say')\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert result.returncode == 0, result.stderr
    assert "BetaWarning" not in result.stderr and "PreviewWarning" not in result.stderr
    assert "currently in beta" not in result.stderr
    assert "something else to say" in result.stderr


def test_the_step_count_is_the_number_of_steps_dagster_plans() -> None:
    """`[n/N]`: N counts a multi-asset once and every separate check, as Dagster's plan does."""
    from dagster._core.execution.api import create_execution_plan

    from pipelines.definitions import defs
    from pipelines.runner import _split_published_readers, _step_count

    job = defs.resolve_job_def("pipeline")
    for selection in _split_published_readers(job):
        planned = create_execution_plan(job.get_subset(asset_selection=set(selection)))
        assert _step_count(job, selection) == len(planned.step_keys_to_execute)
