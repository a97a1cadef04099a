"""Reports (CONTRACT §5) from a small fixture warehouse whose mart tables have the contract's
columns: files exist, numbers equal the tables, a day without data says so, images exist."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from assets.reports.build import build_daily_report, build_weekly_report
from pipelines import warehouse
from pipelines.settings import Funnel, Settings

DAY = dt.date(2026, 3, 10)  # a Tuesday with data and an anomaly
EMPTY_DAY = dt.date(2026, 3, 11)  # inside the data range, zero events
FIRST_DAY = dt.date(2026, 2, 23)  # a Monday
WEEK = dt.date(2026, 3, 2)  # a full Monday week with data
CHECKOUT = Funnel("checkout", ("page_view", "signup", "add_to_cart", "purchase"))
WINDOW = dt.timedelta(days=7)  # CHECKOUT's window
LAST_EVENT_DAY = EMPTY_DAY  # is_complete in the fixture marts is relative to it
BROWSE = Funnel("browse | search", ("page_view", "search"))  # a pipe must not break tables

MART_DDL = """
create table daily_metrics (metric_date date, dimension varchar, segment varchar,
    active_users bigint, new_users bigint, sessions bigint, events bigint, purchasers bigint,
    revenue double, conversion_rate double);
create table funnel_steps (funnel varchar, dimension varchar, segment varchar, step_index integer,
    step varchar, users bigint, conversion_from_first double, conversion_from_previous double,
    median_seconds_from_previous double, avg_seconds_from_previous double);
create table funnel_daily (funnel varchar, entry_date date, step_index integer, step varchar,
    users bigint, is_complete boolean);
create table retention (granularity varchar, mode varchar, cohort_start date,
    cohort_users bigint, period integer, retained_users bigint, retention_rate double,
    is_complete boolean, definition varchar);
create table cohorts (cohort_granularity varchar, cohort_start date, dimension varchar,
    segment varchar, cohort_users bigint, period_index integer, active_users bigint,
    retention_rate double, churn_rate double, revenue double, cumulative_revenue double,
    ltv double, is_complete boolean);
create table anomalies (metric_date date, metric varchar, dimension varchar, segment varchar,
    value double, expected double, score double, is_anomaly boolean, direction varchar,
    explanation varchar);
"""


def _days() -> list[dt.date]:
    return [FIRST_DAY + dt.timedelta(days=n) for n in range((EMPTY_DAY - FIRST_DAY).days + 1)]


def fill_marts(conn: duckdb.DuckDBPyConnection, tables: set[str] | None = None) -> None:
    """Small, deterministic rows in every mart (or only in `tables`)."""
    for statement in conn.extract_statements(MART_DDL):
        conn.execute(statement)
    for n, day in enumerate(_days()):
        active = 0 if day == EMPTY_DAY else 100 + 7 * n
        purchasers = 0 if day == EMPTY_DAY else 10 + n % 4
        revenue = 0.0 if day == EMPTY_DAY else 250.5 + 13.25 * n
        events = 0 if day == EMPTY_DAY else 900 + 11 * n
        row = (active, 20 + n if active else 0, active + 30 if active else 0, events)
        conn.execute(
            "insert into daily_metrics values (?, 'all', 'all', ?, ?, ?, ?, ?, ?, ?)",
            [day, *row, purchasers, revenue, purchasers / active if active else 0.0],
        )
        if active:
            conn.execute(
                "insert into daily_metrics values (?, 'platform', 'ios', ?, 1, 1, 5, 1, 1.0, 0.5)",
                [day, active // 2],
            )
    funnel_users = (400, 250, 120, 45)
    for dimension, segment, scale in (("all", "all", 1), ("platform", "ios", 0.5)):
        for index, step in enumerate(CHECKOUT.steps, start=1):
            users, before = funnel_users[index - 1], funnel_users[max(index - 2, 0)]
            seconds = None if index == 1 else 60.0 * index
            conn.execute(
                "insert into funnel_steps values ('checkout', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    dimension,
                    segment,
                    index,
                    step,
                    int(users * scale),
                    users / 400,
                    users / before,
                    seconds,
                    seconds and seconds * 1.5,
                ],
            )
    for day in _days()[:-1]:
        for index, (step, users) in enumerate(zip(CHECKOUT.steps, (30, 18, 9, 4), strict=True), 1):
            conn.execute(
                "insert into funnel_daily values ('checkout', ?, ?, ?, ?, ?)",
                [day, index, step, users + day.day % 3, day + WINDOW <= LAST_EVENT_DAY],
            )
    for granularity, step, periods in (("day", 1, 30), ("week", 7, 12)):
        for cohort in range(3):
            start = FIRST_DAY + dt.timedelta(days=step * cohort)
            for period in range(periods + 1):
                if start + dt.timedelta(days=step * period) > EMPTY_DAY:
                    break
                retained = 50 if period == 0 else max(50 - 9 * period - cohort, 0)
                for mode in ("exact", "on_or_after"):
                    conn.execute(
                        "insert into retention values (?, ?, ?, 50, ?, ?, ?, ?, 'any')",
                        [
                            granularity,
                            mode,
                            start,
                            period,
                            retained,
                            retained / 50,
                            start + dt.timedelta(days=step * (period + 1)) <= EMPTY_DAY,
                        ],
                    )
    for cohort in range(3):
        start = FIRST_DAY + dt.timedelta(days=7 * cohort)
        for period in range(3 - cohort):
            active = 80 if period == 0 else 80 - 25 * period - 3 * cohort
            conn.execute(
                "insert into cohorts values ('week', ?, 'all', 'all', 80, ?, ?, ?, ?, 0, 0, 0, ?)",
                [
                    start,
                    period,
                    active,
                    active / 80,
                    1 - active / 80,
                    start + dt.timedelta(days=7 * (period + 1)) <= EMPTY_DAY,
                ],
            )
    for day in _days():
        spike = day == DAY
        conn.execute(
            "insert into anomalies values (?, 'revenue', 'all', 'all', ?, 300.0, ?, ?, ?, ?)",
            [
                day,
                900.0 if spike else 300.0,
                0.97 if spike else 0.1,
                spike,
                "spike" if spike else None,
                "Revenue (all users) was 900.00 against an expected 300.00 (+200%)."
                if spike
                else "",
            ],
        )
    conn.execute(
        "insert into anomalies values (?, 'active_users', 'platform', 'ios', 40, 80, 0.8, true, "
        "'dip', 'Active users on platform ios were 40 against an expected 80 (-50%).')",
        [DAY],
    )
    for table in set(_tables(conn)) - (tables if tables is not None else set(_tables(conn))):
        conn.execute(f"drop table {table}")


def _tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in conn.execute("select table_name from duckdb_tables()").fetchall()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", funnels=(CHECKOUT, BROWSE))


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory):
    """One filled warehouse for the module: reports only read it."""
    connection = warehouse.connect(tmp_path_factory.mktemp("marts") / "marts.duckdb")
    fill_marts(connection)
    try:
        yield connection
    finally:
        connection.close()


def section_tables(markdown: str, heading: str) -> list[list[dict[str, str]]]:
    """The Markdown tables under `## heading` (up to the next `## `), as lists of row dicts."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section {heading!r}"
    tables, current = [], []
    for line in match.group(1).splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            cells = [_cells(row) for row in current]
            tables.append([dict(zip(cells[0], row, strict=True)) for row in cells[2:]])
            current = []
    return tables


def _cells(row: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def _number(text: str) -> float:
    """A table cell's number: "12.34%", "$1,234.50", "−$3.00" (revenue is money)."""
    return float(text.rstrip("%").replace("$", "").replace(",", "").replace("\u2212", "-"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in {("img", "src"), ("a", "href"), ("link", "href")} and value:
                self.sources.append(value)


def test_daily_report_writes_markdown_html_and_figures_at_contract_paths(marts, settings):
    paths = build_daily_report(marts, settings, DAY)

    assert paths.markdown == settings.reports_dir / "daily" / "2026-03-10.md"
    assert paths.html == settings.reports_dir / "daily" / "2026-03-10.html"
    assert paths.has_data
    names = {p.name for p in paths.figures}
    assert {"funnel-checkout.png", "retention-day.png", "retention-week.png"} <= names
    assert {"cohorts-week.png", "anomaly-revenue-all-all.png"} <= names
    assert all(p.parent == settings.reports_dir / "daily" / "2026-03-10" for p in paths.figures)
    assert all(p.stat().st_size > 1000 for p in paths.figures)


def test_headline_numbers_equal_daily_metrics_with_both_comparisons(marts, settings):
    markdown = build_daily_report(marts, settings, DAY).markdown.read_text()
    (headline,) = section_tables(markdown, "Headline metrics")
    rows = {row["Metric"]: row for row in headline}
    expected = {
        d: marts.execute(
            "select active_users, new_users, sessions, purchasers, revenue, conversion_rate "
            "from daily_metrics where dimension = 'all' and segment = 'all' and metric_date = ?",
            [d],
        ).fetchone()
        for d in (DAY, DAY - dt.timedelta(days=1), DAY - dt.timedelta(days=7))
    }
    labels = ["Active users", "New users", "Sessions", "Purchasers", "Revenue", "Conversion"]
    columns = ["2026-03-10", "Previous day (2026-03-09)", "Same weekday last week (2026-03-03)"]
    for column, day in zip(columns, expected, strict=True):
        for position, label in enumerate(labels):
            value = expected[day][position]
            shown = _number(rows[label][column])
            if label == "Conversion":
                assert shown == pytest.approx(value * 100, abs=0.005)
            else:
                assert shown == pytest.approx(value, abs=0.005)
    assert rows["Active users"]["Change vs previous day"].startswith("+7 (")  # 163 vs 156
    assert "pp" in rows["Conversion"]["Change vs last week"]


def test_funnel_table_equals_funnel_daily_for_the_day_and_funnel_steps_overall(marts, settings):
    markdown = build_daily_report(marts, settings, DAY).markdown.read_text()
    table = section_tables(markdown, "Funnels")[0]
    day_users = dict(
        marts.execute(
            "select step_index, users from funnel_daily where funnel = 'checkout' "
            "and entry_date = ?",
            [DAY],
        ).fetchall()
    )
    overall = dict(
        marts.execute(
            "select step_index, users from funnel_steps where funnel = 'checkout' "
            "and dimension = 'all'"
        ).fetchall()
    )
    for row in table:
        step = int(row["Step"])
        assert int(row["Users (period)"]) == day_users[step]
        assert int(row["Users (all time)"]) == overall[step]
    assert table[-1]["Conversion from first (period)"] == f"{day_users[4] / day_users[1]:.2%}"
    # A configured funnel that the marts have not computed is named, not silently dropped.
    assert 'Funnel "browse | search": not computed yet' in markdown


def test_anomaly_section_explains_the_days_flagged_anomalies_with_a_chart_each(marts, settings):
    paths = build_daily_report(marts, settings, DAY)
    markdown = paths.markdown.read_text()
    assert "- Revenue (all users) was 900.00 against an expected 300.00 (+200%)." in markdown
    assert "- Active users on platform ios were 40 against an expected 80 (-50%)." in markdown
    (flagged, revenue_series, _ios_series) = section_tables(markdown, "Anomalies")
    assert [row["Metric"] for row in flagged] == ["revenue", "active_users"]  # by score
    assert (settings.reports_dir / "daily/2026-03-10/anomaly-revenue-all-all.png").exists()
    assert (
        settings.reports_dir / "daily/2026-03-10/anomaly-active-users-platform-ios.png"
    ).exists()
    anomalous = [row["Day"] for row in revenue_series if row["Anomaly"] == "yes"]
    assert anomalous == ["2026-03-10"]


def test_a_day_without_anomalies_says_none_were_flagged(marts, settings):
    markdown = build_daily_report(marts, settings, DAY - dt.timedelta(days=1)).markdown.read_text()
    assert "No anomalies were flagged on 2026-03-09." in markdown


@pytest.mark.parametrize("day", [EMPTY_DAY, dt.date(2025, 1, 1)], ids=["zero-row", "no-row"])
def test_a_day_without_data_says_so_plainly(marts, settings, day):
    paths = build_daily_report(marts, settings, day)

    assert not paths.has_data
    assert paths.figures == ()
    text = paths.markdown.read_text()
    assert f"No data: no events were recorded on this day ({day.isoformat()})." in text
    assert "## Headline metrics" not in text
    assert "No data" in paths.html.read_text()


def test_every_image_and_link_in_both_documents_exists(marts, settings):
    for paths in (
        build_daily_report(marts, settings, DAY),
        build_weekly_report(marts, settings, WEEK),
    ):
        markdown_images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", paths.markdown.read_text())
        parser = _Links()
        parser.feed(paths.html.read_text())
        assert markdown_images and parser.sources
        assert sorted(markdown_images) == sorted(parser.sources)
        for source in parser.sources:
            assert not source.startswith(("/", "http:", "https:")), source  # relative, offline
            assert (paths.html.parent / source).is_file(), source
        assert {paths.html.parent / s for s in parser.sources} == set(paths.figures)


def test_html_is_self_contained_with_inline_css(marts, settings):
    html = build_daily_report(marts, settings, DAY).html.read_text()
    assert "<style>" in html
    assert "<script" not in html
    assert 'rel="stylesheet"' not in html
    assert '<section id="headline">' in html
    assert '<section id="anomalies">' in html


def test_weekly_report_totals_and_averages_equal_the_days_of_daily_metrics(marts, settings):
    paths = build_weekly_report(marts, settings, WEEK + dt.timedelta(days=3))  # any day of it

    assert paths.markdown == settings.reports_dir / "weekly" / "2026-W10.md"
    markdown = paths.markdown.read_text()
    (headline,) = section_tables(markdown, "Headline metrics")
    rows = {row["Metric"]: row for row in headline}
    totals = marts.execute(
        "select sum(new_users), sum(sessions), sum(revenue), avg(active_users), "
        "avg(purchasers), avg(conversion_rate) from daily_metrics "
        "where dimension = 'all' and metric_date between ? and ?",
        [WEEK, WEEK + dt.timedelta(days=6)],
    ).fetchone()
    column = "This week (2026-03-02 to 2026-03-08)"
    assert _number(rows["New users"][column]) == totals[0]
    assert _number(rows["Sessions"][column]) == totals[1]
    assert _number(rows["Revenue"][column]) == pytest.approx(totals[2], abs=0.005)
    assert _number(rows["Active users"][column]) == pytest.approx(totals[3], abs=0.005)
    assert rows["Active users"]["Measure"] == "daily average"
    assert _number(rows["Conversion"][column]) == pytest.approx(totals[5] * 100, abs=0.005)
    (days,) = section_tables(markdown, "Day by day")
    assert len(days) == 7
    for heading in ("Funnels", "Retention", "Week cohorts", "Anomalies"):
        assert f"## {heading}" in markdown


def test_retention_and_cohort_tables_equal_the_marts_as_of_the_report_day(marts, settings):
    markdown = build_daily_report(marts, settings, DAY).markdown.read_text()
    day_curve, week_curve = section_tables(markdown, "Retention")
    expected = marts.execute(
        "select period, sum(cohort_users), sum(retained_users) from retention "
        "where granularity = 'week' and mode = 'exact' and cohort_start + 7 * (period + 1) <= ? "
        "group by period order by period",
        [DAY + dt.timedelta(days=1)],
    ).fetchall()
    assert [(int(r["Week"]), int(r["Cohort users"]), int(r["Retained"])) for r in week_curve] == [
        tuple(map(int, row)) for row in expected
    ]
    # Only ended periods: the week of 03-09 is still running on Tuesday 03-10, so week 2 of the
    # 02-23 cohort is left out; day 15 of the first day cohort is 03-10 itself, which has ended.
    assert [int(r["Week"]) for r in week_curve] == [0, 1]
    assert int(day_curve[-1]["Day"]) == (DAY - FIRST_DAY).days
    (heatmap,) = section_tables(markdown, "Week cohorts")
    assert [r["Cohort week"] for r in heatmap] == ["2026-02-23", "2026-03-02", "2026-03-09"]
    assert heatmap[0]["W1"] == f"{55 / 80:.2%}"
    # Weeks still running on the report day carry no value, in the table as in the chart.
    assert heatmap[0]["W2"] == heatmap[1]["W1"] == heatmap[2]["W0"] == "running"


def test_a_section_appears_only_for_tables_that_exist(tmp_path, settings):
    connection = warehouse.connect(tmp_path / "partial.duckdb")
    try:
        fill_marts(connection, tables={"daily_metrics"})
        paths = build_daily_report(connection, settings, DAY)
    finally:
        connection.close()
    markdown = paths.markdown.read_text()
    assert "## Headline metrics" in markdown
    for heading in ("Funnels", "Retention", "Week cohorts", "Anomalies"):
        assert f"## {heading}" not in markdown
    assert [p.name for p in paths.figures] == ["trends.png"]  # from daily_metrics alone


def test_no_warehouse_tables_at_all_says_so(tmp_path, settings):
    connection = warehouse.connect(tmp_path / "empty.duckdb")
    try:
        paths = build_daily_report(connection, settings, DAY)
    finally:
        connection.close()
    assert "no daily_metrics table yet" in paths.markdown.read_text()


def test_rewriting_a_report_gives_identical_files_and_drops_stale_figures(marts, settings):
    first = build_daily_report(marts, settings, DAY)
    contents = {p: p.read_bytes() for p in (first.markdown, first.html, *first.figures)}
    stale = first.figures[0].parent / "old-figure.png"
    stale.write_bytes(b"stale")

    second = build_daily_report(marts, settings, DAY)

    assert {p: p.read_bytes() for p in (second.markdown, second.html, *second.figures)} == contents
    assert not stale.exists()
