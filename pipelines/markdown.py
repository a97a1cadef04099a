"""Markdown previews for the Dagster UI's asset metadata."""

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
