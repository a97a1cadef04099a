"""The PM's view (issue 16 item 9): six-week trends with an expected band computed by a stated
rule (checked against a pure-Python reference), platform and channel breakdowns equal to
daily_metrics, and revenue written as money in the configured currency."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import matplotlib.dates as mdates
import pytest

from assets.reports.build import build_daily_report
from assets.reports.trends import TREND_DAYS, metric_trends, trend_chart, trend_figure
from pipelines import warehouse
from pipelines.charts import png_bytes
from pipelines.formatting import money
from pipelines.settings import Settings, parse_settings

END = dt.date(2026, 3, 10)
FIRST = END - dt.timedelta(days=80)


def _active(day: dt.date) -> int:
    return 100 + 10 * (day.weekday() == 0) + (day - FIRST).days % 5


@pytest.fixture
def metrics_conn(tmp_path: Path):
    conn = warehouse.connect(tmp_path / "w.duckdb")
    conn.execute(
        "create table daily_metrics (metric_date date, dimension varchar, segment varchar, "
        "active_users bigint, new_users bigint, sessions bigint, events bigint, "
        "purchasers bigint, revenue double, conversion_rate double)"
    )
    day = FIRST
    while day <= END:
        active = _active(day)
        revenue = 1234.5 + (day - FIRST).days
        conn.execute(
            "insert into daily_metrics values (?, 'all', 'all', ?, 10, ?, 900, 8, ?, ?)",
            [day, active, active + 20, revenue, 8 / active],
        )
        for platform, share in (("ios", 0.6), ("web", 0.4)):
            conn.execute(
                "insert into daily_metrics values (?, 'platform', ?, ?, 5, 5, 400, ?, ?, ?)",
                [
                    day,
                    platform,
                    round(active * share),
                    4,
                    revenue * share,
                    4 / round(active * share),
                ],
            )
        day += dt.timedelta(days=1)
    yield conn
    conn.close()


def _reference_band(values: dict[dt.date, float], day: dt.date) -> tuple[float, float] | None:
    history = [
        values[day - dt.timedelta(days=n)]
        for n in range(1, 29)
        if day - dt.timedelta(days=n) in values
    ]
    if len(history) < 7:
        return None
    mean = sum(history) / len(history)
    sd = math.sqrt(sum((v - mean) ** 2 for v in history) / len(history))
    return mean - 2 * sd, mean + 2 * sd


def test_expected_band_is_the_mean_of_28_days_before_plus_minus_two_sd(metrics_conn) -> None:
    trends = metric_trends(metrics_conn, END)
    points = trends["active_users"]
    assert len(points) == TREND_DAYS and points[-1].day == END
    values = {}
    day = FIRST
    while day <= END:
        values[day] = float(_active(day))
        day += dt.timedelta(days=1)
    for point in points:
        assert point.value == values[point.day]
        expected = _reference_band(values, point.day)
        assert expected is not None
        assert point.low == pytest.approx(expected[0]) and point.high == pytest.approx(expected[1])
    # With less than a week of history there is no band.
    early = metric_trends(metrics_conn, FIRST + dt.timedelta(days=3))["active_users"]
    assert all(p.low is None for p in early)


def test_trend_chart_spans_the_six_weeks_shown_even_on_the_first_day_of_data(metrics_conn) -> None:
    """A home's first report has one point: its x axis is still the six weeks (left to
    autoscaling it spanned years, one Monday tick per week of them)."""
    for end in (FIRST, END):
        figure = trend_figure(metric_trends(metrics_conn, end))
        for axes in figure.axes:
            left, right = (mdates.num2date(x).replace(tzinfo=None) for x in axes.get_xlim())
            first_shown = dt.datetime.combine(end - dt.timedelta(days=TREND_DAYS - 1), dt.time())
            assert left == first_shown - dt.timedelta(hours=12)
            assert right == dt.datetime.combine(end, dt.time()) + dt.timedelta(hours=12)
            assert len(axes.xaxis.get_major_locator()()) <= 7  # a tick on each Monday shown


def test_the_reused_trend_figure_gives_the_bytes_of_a_new_one(metrics_conn, tmp_path) -> None:
    """Each process draws its trend charts on one figure; a chart must not keep anything of
    the one drawn before it (data limits, the band of a day with one, the x window)."""
    middle = FIRST + dt.timedelta(days=9)
    for i, end in enumerate((END, FIRST, middle, FIRST + dt.timedelta(days=3), END)):
        trends = metric_trends(metrics_conn, end)
        trend_chart(trends, tmp_path / f"{i}.png")
        fresh = png_bytes(trend_figure(trends), tight=False)
        assert (tmp_path / f"{i}.png").read_bytes() == fresh, end


def test_daily_report_has_trends_and_platform_breakdown_with_money(metrics_conn, tmp_path) -> None:
    settings = parse_settings({"currency": "EUR", "funnels": []}, home=tmp_path / "home")
    paths = build_daily_report(metrics_conn, settings, END)
    markdown = paths.markdown.read_text()
    assert (
        "## Six-week trends" in markdown and (paths.html.parent / "2026-03-10/trends.png").exists()
    )
    section = markdown.split("## By platform and channel", 1)[1]
    rows = {
        cells[0]: cells
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Platform")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    ios = metrics_conn.execute(
        "select active_users, revenue from daily_metrics where segment = 'ios' and metric_date = ?",
        [END],
    ).fetchone()
    assert rows["ios"][1] == str(ios[0])
    assert rows["ios"][6] == money(ios[1], "EUR", "—")
    assert re.fullmatch(r"€\d{1,3}(,\d{3})*\.\d\d", rows["ios"][6])
    headline = markdown.split("## Headline metrics", 1)[1].split("## ", 1)[0]
    assert "€1,314.50" in headline  # 1234.5 + 80 days, with a thousands separator


def test_money_and_the_currency_setting() -> None:
    assert money(1234567.891, "USD", "—") == "$1,234,567.89"
    assert money(-3, "GBP", "—") == "\u2212£3.00"
    assert money(1500, "JPY", "—") == "¥1,500"
    assert money(12.5, "CHF", "—") == "12.50 CHF"
    assert money(None, "USD", "—") == "—"
    assert Settings(home=Path(".")).currency == "USD"
    with pytest.raises(Exception, match="currency 'dollars' is not a currency code"):
        parse_settings({"currency": "dollars"}, home=Path("."))


def test_long_figure_tables_start_collapsed_in_html(metrics_conn, tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", funnels=())
    html = build_daily_report(metrics_conn, settings, END).html.read_text()
    assert "<details>" in html  # the 42-day trend table: there, but folded
