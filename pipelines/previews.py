"""Markdown tables: the Dagster UI's asset previews and the reports' tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl


def markdown_table(frame: pl.DataFrame) -> str:
    """The frame as a Markdown table, every row and column, cells never wrapped."""
    # Wide limits: polars would otherwise wrap long cells over lines and break the table.
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=200,
    ):
        return str(frame)


def markdown_rows(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], right_aligned: Sequence[str] = ()
) -> str:
    """Already formatted cells as a Markdown table (header, alignment row, one line a row)."""
    rule = ["---:" if name in right_aligned else "---" for name in columns]
    lines = [_row(columns), _row(rule)]
    lines += [_row([markdown_cell(value) for value in row]) for row in rows]
    return "\n".join(lines)


def markdown_cell(value: Any) -> str:
    """A Markdown table cell: a pipe would end the cell early."""
    return str(value).replace("|", "\\|")


def _row(cells: Sequence[str]) -> str:
    return f"| {' | '.join(cells)} |"
