"""The report charts: a chart asked again with the data it was last drawn from is copied."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from matplotlib.patches import Rectangle

from assets.reports import figures
from pipelines.charts import TITLE_Y, fixed_margins, new_figure, png_bytes, reuse_identical_png


def test_a_chart_of_equal_data_is_copied_and_other_data_is_drawn(tmp_path: Path) -> None:
    calls: list[tuple[int, ...]] = []

    @reuse_identical_png
    def bars(values: list[int], path: Path, *, title: str = "") -> None:
        calls.append(tuple(values))
        path.write_bytes(f"{title}:{values}".encode())

    bars([1, 2], tmp_path / "a.png", title="t")
    bars([1, 2], tmp_path / "sub" / "b.png", title="t")  # copied, folder made
    bars([1, 3], tmp_path / "c.png", title="t")
    bars([1, 2], tmp_path / "d.png", title="other")
    assert calls == [(1, 2), (1, 3), (1, 2)]
    assert (tmp_path / "sub" / "b.png").read_bytes() == (tmp_path / "a.png").read_bytes()
    assert (tmp_path / "d.png").read_bytes() == b"other:[1, 2]"


def test_the_copied_heatmap_has_the_bytes_of_a_fresh_drawing(tmp_path: Path) -> None:
    starts = [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(3)]
    matrix = {s: [1.0, 0.5 - i / 10, None] for i, s in enumerate(starts)}
    args = (starts, matrix, 3)
    figures.cohort_heatmap(*args, tmp_path / "first.png", running=[(starts[-1], 0)])
    # A running cell's value changes, what is drawn does not: copied.
    matrix[starts[-1]][0] = 0.9
    figures.cohort_heatmap(*args, tmp_path / "copied.png", running=[(starts[-1], 0)])
    rows = [s.isoformat() for s in starts]
    nan = float("nan")
    grid = [[100.0, 50.0, nan], [100.0, 40.0, nan], [nan, 30.0, nan]]
    figures.draw_cohort_heatmap.__wrapped__(rows, grid, 3, [(2, 0)], tmp_path / "fresh.png")
    fresh = (tmp_path / "fresh.png").read_bytes()
    assert fresh.startswith(b"\x89PNG")
    assert (tmp_path / "copied.png").read_bytes() == fresh == (tmp_path / "first.png").read_bytes()


def test_the_reused_retention_figure_gives_the_bytes_of_a_new_one(tmp_path: Path) -> None:
    """Each process draws its retention curves on one figure per granularity; a curve must not
    keep anything of the one drawn before it (its points, the x range)."""
    curves = [
        (list(range(31)), [1.0, *(0.5 - n / 100 for n in range(30))], "day"),
        ([0], [1.0], "day"),
        (list(range(5)), [1.0, None, 0.25, 0.125, 0.0], "day"),
        (list(range(13)), [1.0, *(0.4 - n / 50 for n in range(12))], "week"),
        (list(range(31)), [1.0, *(0.6 - n / 90 for n in range(30))], "day"),
    ]
    for i, (periods, rates, granularity) in enumerate(curves):
        figures.retention_chart(periods, rates, granularity, tmp_path / f"{i}.png")
        fresh = png_bytes(
            figures.retention_figure(periods, rates, figures.new_retention_figure(granularity)),
            tight=False,
        )
        assert (tmp_path / f"{i}.png").read_bytes() == fresh, i


def _heatmap_drawn_afresh(
    rows: list[str], grid: list[list[float]], width: int, running: list[tuple[int, int]]
) -> bytes:
    """The heatmap drawn the plain way, on a figure of its own: the reference for the reused
    figure's bytes."""
    fig = new_figure(7, 0.9 + 0.32 * len(rows))
    ax = fig.subplots()
    for row, index in running:
        ax.add_patch(
            Rectangle(
                (index - 0.5, row - 0.5),
                1,
                1,
                facecolor=figures.PARTIAL_GREY,
                hatch="//",
                edgecolor="#808080",
                linewidth=0,
            )
        )
    image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=100)
    for y, cells in enumerate(grid):
        for x, value in enumerate(cells):
            if value == value:
                color = "white" if value > 60 else "black"
                ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(width), [f"W{i}" for i in range(width)], fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title("Week cohorts: % of users active in week N", fontsize=9, y=TITLE_Y)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fixed_margins(fig, left=0.8, right=0.45, bottom=0.3, top=0.3)
    return png_bytes(fig, tight=False)


def test_the_reused_heatmap_figure_gives_the_bytes_of_a_new_one(tmp_path: Path) -> None:
    """Each process draws its heatmaps on one figure per shape: a heatmap must not keep
    anything of the one drawn before it (cells, their numbers, hatching, row labels)."""
    nan = float("nan")
    heatmaps = [
        (["2026-03-02", "2026-03-09"], [[100.0, 61.0], [100.0, nan]], 2, [(1, 0)]),
        (["2026-03-09", "2026-03-16"], [[100.0, 42.0], [nan, nan]], 2, [(0, 1), (1, 0)]),
        (["2026-03-09", "2026-03-16"], [[100.0, 42.4], [100.0, 7.0]], 2, []),
        (["2026-03-02"], [[100.0, 55.0, 3.0]], 3, [(0, 2)]),
        (["2026-03-16", "2026-03-23"], [[90.0, 12.0], [100.0, nan]], 2, [(1, 1)]),
    ]
    for i, (rows, grid, width, running) in enumerate(heatmaps):
        figures.draw_cohort_heatmap(rows, grid, width, running, tmp_path / f"{i}.png")
        fresh = _heatmap_drawn_afresh(rows, grid, width, running)
        assert (tmp_path / f"{i}.png").read_bytes() == fresh, i


def _funnel_drawn_afresh(steps: list[str], counts: list[int], title: str, complete: bool) -> bytes:
    """The funnel chart drawn the plain way, on a figure of its own."""
    fig = new_figure(7, 3.2)
    ax = fig.subplots()
    style = (
        {"color": figures.BLUE}
        if complete
        else {"color": figures.PARTIAL_GREY, "hatch": "//", "edgecolor": "#808080"}
    )
    bars = ax.bar(range(len(counts)), counts, **style)
    for bar, count in zip(bars, counts, strict=True):
        ax.annotate(
            f"{count}\n{count / (counts[0] or 1):.1%}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(counts)), steps, fontsize=8)
    ax.set_ylabel("users")
    ax.set_ylim(0, max(counts + [1]) * 1.3)
    ax.set_title(title, fontsize=9, y=TITLE_Y)
    fixed_margins(fig, left=0.85, right=0.15, bottom=0.4, top=0.35)
    return png_bytes(fig, tight=False)


def test_the_reused_funnel_figure_gives_the_bytes_of_a_new_one(tmp_path: Path) -> None:
    """Each process draws a funnel's charts on one figure: a chart must not keep anything of
    the one drawn before it (bars, their labels and style, the y range, the title)."""
    three = ["visit", "cart", "purchase"]
    charts = [
        (three, [1200, 300, 45], "Funnel on 2026-03-02", True),
        (three, [80, 0, 0], "Funnel on 2026-03-03 (window still open)", False),
        (three, [0, 0, 0], "Funnel over the whole history", True),
        (["a", "b"], [10, 9], "Two steps", True),
        (three, [950, 410, 120], "Funnel on 2026-03-04", True),
    ]
    for i, (steps, counts, title, complete) in enumerate(charts):
        users = {n: c for n, c in enumerate(counts, start=1) if c}
        figures.funnel_chart(steps, users, title, tmp_path / f"{i}.png", complete=complete)
        fresh = _funnel_drawn_afresh(steps, counts, title, complete)
        assert (tmp_path / f"{i}.png").read_bytes() == fresh, i
