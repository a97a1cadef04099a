"""PostHog's funnel breakdown test cases, run through eventpulse (issue 17 acceptance).

The same method as test_posthog_cases.py (its helpers: events in PostHog's export shape through
the real ingest): each case is one PostHog test (file and test name in `source`, under
posthog/hogql_queries/insights/ of github.com/PostHog/posthog), our config with `dimensions` /
`dimension_limit`, and the `funnel_steps` rows of the dimension compared with PostHog's counts.

How PostHog's breakdowns map to ours:
- An event property `$browser` is our dimension `properties.$browser`; PostHog's
  `breakdown_limit` is our `dimension_limit`.
- PostHog's breakdown value "" (no value) is our segment 'unknown', its "Other" our 'other'.
- Ours is the entry event's value of the user's counted attempt (CONTRACT §3). PostHog's
  default attribution, "first_touch", takes the first value the person's funnel events carry:
  the same unless the entry event has none (difference `entry_event_value`); its "step 0" is
  ours.
- A combined breakdown by several properties is ported as one single dimension per property
  (we break down by one dimension at a time).
- A segment PostHog has no row for, and a step a segment has no row for, count 0.

Retention breakdowns (test/test_retention_query_runner.py) are not ported: our `retention` has
no dimension, and PostHog's breakdown retention counts only returns with the start event's
value, which `cohorts` (segment fixed for life, any returning event) does not define.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import ascii_lowercase

import duckdb
import pytest
from test_posthog_cases import DIFFERENCES, Event, at, funnel, land_and_load, step

from assets.marts.funnels import build_funnels
from pipelines import warehouse
from pipelines.settings import DEFAULT_FUNNEL_WINDOW_SECONDS, Funnel, Settings

FUNNELS = "funnels/test/"
BREAKDOWN_CASES_FILE = FUNNELS + "breakdown_cases.py"
DAYS_7 = 7 * 86400

Counts = dict[str, list[int]]  # segment -> users per step


@dataclass(frozen=True)
class BreakdownCase:
    source: str  # PostHog file (under posthog/hogql_queries/insights/) :: test name
    events: list[Event]
    funnel: Funnel
    # dimension -> segment -> PostHog's users per step; segments PostHog shows are all there
    posthog: dict[str, Counts]
    ours: dict[str, Counts] | None = None  # our contract's rows when they differ
    difference: str | None = None
    dimension_limit: int = 25
    # (dimension, segment, step index) -> average (= median) seconds from the previous step:
    # PostHog's, or ours where the case shows a difference
    seconds: dict[tuple[str, str, int], float] = field(default_factory=dict)


BROWSER = "properties.$browser"


def three_people(browser: dict[str, str], version: dict[str, int] | None = None) -> list[Event]:
    """breakdown_cases.py's story: person1 signs up, plays a movie and buys; person2 signs up
    and plays a movie; person3 only signs up."""
    version = version or {}

    def props(person: str) -> dict:
        found = {"key": "val", "$browser": browser[person]}
        if person in version:
            found["$browser_version"] = version[person]
        return found

    return [
        at("person1", "sign up", "2020-01-01T12:00:00", **props("person1")),
        at("person1", "play movie", "2020-01-01T13:00:00", **props("person1")),
        at("person1", "buy", "2020-01-01T15:00:00", **props("person1")),
        at("person2", "sign up", "2020-01-02T14:00:00", **props("person2")),
        at("person2", "play movie", "2020-01-02T16:00:00", **props("person2")),
        at("person3", "sign up", "2020-01-02T14:00:00", **props("person3")),
    ]


def numbered_people(nums: range, with_null: bool = False) -> list[Event]:
    """breakdown_cases.py's limit tests: for each num, num people who sign up, play a movie and
    buy with `some_breakdown_val: str(num)`; optionally one person without the property."""
    people = [
        (f"person_{num}_{i}", {"some_breakdown_val": str(num)}) for num in nums for i in range(num)
    ]
    if with_null:
        people.append(("person_null", {}))
    return [
        at(person, event, f"2020-01-01T{hour}:00:00", **props)
        for person, props in people
        for event, hour in (("sign up", 12), ("play movie", 13), ("buy", 15))
    ]


def sign_up_movie_buy(order: str) -> Funnel:
    return funnel("sign up", "play movie", "buy", window_seconds=DAYS_7, order=order)


DOCS_X = "https://posthog.com/docs/x"


def touch_people(with_person5: bool) -> list[Event]:
    """breakdown_cases.py's attribution tests: sign up then buy, the browser on one of them."""
    events = [
        at("person1", "sign up", "2020-01-01T12:00:00", **{"$browser": "Chrome"}),
        at("person1", "buy", "2020-01-01T13:00:00"),
        at("person2", "sign up", "2020-01-01T13:00:00"),
        at("person2", "buy", "2020-01-02T13:00:00", **{"$browser": "Safari"}),
        at("person3", "sign up", "2020-01-02T14:00:00", **{"$browser": "Mac"}),
        at("person3", "buy", "2020-01-02T15:00:00"),
        at("person4", "sign up", "2020-01-02T15:00:00", **{"$browser": 0}),
        at("person4", "buy", "2020-01-02T16:00:00", **{"$browser": "alakazam"}),
    ]
    if with_person5:  # no properties at all: PostHog's ''
        events += [
            at("person5", "sign up", "2020-01-02T15:00:00"),
            at("person5", "buy", "2020-01-02T16:00:00"),
        ]
    return events


BROWSER_ROWS = {"Chrome": [1, 1, 1], "Safari": [2, 1, 0]}
BROWSER_SECONDS = {
    (BROWSER, "Chrome", 2): 3600.0,
    (BROWSER, "Chrome", 3): 7200.0,
    (BROWSER, "Safari", 2): 7200.0,
}


def factory_cases(order: str) -> dict[str, BreakdownCase]:
    """breakdown_cases.py is a factory PostHog runs for ordered, strict and unordered funnels."""
    browsers = {"person1": "Chrome", "person2": "Safari", "person3": "Safari"}
    some_val = "properties.some_breakdown_val"
    cases = {
        f"{order}_string_only_breakdown": BreakdownCase(
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_event_with_string_only_breakdown",
            three_people(browsers),
            sign_up_movie_buy(order),
            posthog={BROWSER: BROWSER_ROWS},
            seconds=BROWSER_SECONDS,
        ),
        f"{order}_breakdown_event": BreakdownCase(
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_event",
            three_people(browsers),
            sign_up_movie_buy(order),
            posthog={BROWSER: BROWSER_ROWS},
            seconds=BROWSER_SECONDS,
        ),
        f"{order}_breakdown_limit": BreakdownCase(
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_limit",
            numbered_people(range(10)),
            sign_up_movie_buy(order),
            # The five values with the most people; the 1 + 2 + 3 + 4 others are "Other".
            posthog={some_val: {str(n): [n] * 3 for n in range(5, 10)} | {"other": [10] * 3}},
            dimension_limit=5,
        ),
        f"{order}_custom_breakdown_limit_with_nulls": BreakdownCase(
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_custom_breakdown_limit_with_nulls_included",
            numbered_people(range(5), with_null=True),
            sign_up_movie_buy(order),
            posthog={some_val: {str(n): [n] * 3 for n in range(1, 5)} | {"unknown": [1] * 3}},
            dimension_limit=6,
        ),
        f"{order}_multi_property_breakdown": BreakdownCase(
            # PostHog breaks down by [$browser, $browser_version] together: [Chrome, 95]
            # [1, 1, 1], [Safari, 15] [1, 1, 0], [Safari, 14] [1, 0, 0]; here each property is
            # its own dimension. The version is a JSON number, compared as text.
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_multi_property_breakdown_event",
            three_people(browsers, {"person1": 95, "person2": 15, "person3": 14}),
            sign_up_movie_buy(order),
            posthog={
                BROWSER: BROWSER_ROWS,
                "properties.$browser_version": {
                    "95": [1, 1, 1],
                    "15": [1, 1, 0],
                    "14": [1, 0, 0],
                },
            },
            seconds=BROWSER_SECONDS
            | {
                ("properties.$browser_version", "95", 2): 3600.0,
                ("properties.$browser_version", "95", 3): 7200.0,
                ("properties.$browser_version", "15", 2): 7200.0,
            },
        ),
        f"{order}_single_person_multiple_breakdowns": BreakdownCase(
            # PostHog's attribution "step 0" with one sign-up per browser: the person is counted
            # in every value they entered with. We count the user once, by the entry of the
            # counted attempt (the earliest that reaches the furthest step): Chrome.
            f"{BREAKDOWN_CASES_FILE}::"
            "test_funnel_step_breakdown_event_single_person_multiple_breakdowns",
            [
                at("person1", "sign up", "2020-01-01T12:00:00", **{"$browser": "Chrome"}),
                at("person1", "sign up", "2020-01-01T13:00:00", **{"$browser": "Safari"}),
                at("person1", "sign up", "2020-01-02T14:00:00", **{"$browser": "Mac"}),
                at("person1", "sign up", "2020-01-02T15:00:00", **{"$browser": 0}),  # a number
            ],
            funnel("sign up", "other event", window_seconds=DAYS_7, order=order),
            posthog={BROWSER: {"0": [1, 0], "Chrome": [1, 0], "Mac": [1, 0], "Safari": [1, 0]}},
            ours={BROWSER: {"Chrome": [1, 0]}},
            difference="one_segment_per_user",
        ),
        f"{order}_single_person_events_with_multiple_properties": BreakdownCase(
            # PostHog's attribution "all_events": every step must carry the same value, so the
            # Chrome sign-up does not go on to the Safari play movie. Ours attributes by the
            # entry event only: the Chrome entry reaches play movie at 01-02 12:30 within the
            # 7 days, and the user is counted once, in Chrome.
            f"{BREAKDOWN_CASES_FILE}::"
            "test_funnel_step_breakdown_event_single_person_events_with_multiple_properties",
            [
                at("person1", "sign up", "2020-01-01T12:00:00", **{"$browser": "Chrome"}),
                at("person1", "play movie", "2020-01-02T12:30:00", **{"$browser": "Safari"}),
                at("person1", "sign up", "2020-01-02T13:00:00", **{"$browser": "Safari"}),
                at("person1", "play movie", "2020-01-02T14:00:00", **{"$browser": "Safari"}),
            ],
            funnel("sign up", "play movie", window_seconds=DAYS_7, order=order),
            posthog={BROWSER: {"Chrome": [1, 0], "Safari": [1, 1]}},  # Safari 3600 s
            ours={BROWSER: {"Chrome": [1, 1]}},
            difference="one_segment_per_user",
            seconds={(BROWSER, "Chrome", 2): 88200.0},  # ours
        ),
        f"{order}_breakdown_event_with_other": BreakdownCase(
            # `breakdown_limit: 1`: Safari (2 people) is kept, Chrome, random and another one
            # are "Other". (PostHog marks this test skipped for its actors query, which we do
            # not port; the counts are the ones it asserts.)
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_event_with_other",
            [
                at("person1", "sign up", "2020-01-01T12:00:00", **{"$browser": "Chrome"}),
                at("person1", "play movie", "2020-01-01T13:00:00", **{"$browser": "Chrome"}),
                at("person2", "sign up", "2020-01-02T14:00:00", **{"$browser": "Safari"}),
                at("person2", "play movie", "2020-01-02T15:00:00", **{"$browser": "Safari"}),
                at("person2", "buy", "2020-01-02T16:00:00", **{"$browser": "Safari"}),
                at("person3", "sign up", "2020-01-02T14:00:00", **{"$browser": "Safari"}),
                at("person4", "sign up", "2020-01-02T14:00:00", **{"$browser": "random"}),
                at("person5", "sign up", "2020-01-02T15:00:00", **{"$browser": "another one"}),
            ],
            sign_up_movie_buy(order),
            posthog={BROWSER: {"Safari": [2, 1, 1], "other": [3, 1, 0]}},
            dimension_limit=1,
            seconds={
                (BROWSER, "Safari", 2): 3600.0,
                (BROWSER, "Safari", 3): 3600.0,
                (BROWSER, "other", 2): 3600.0,
            },
        ),
        f"{order}_step_zero_attribution": BreakdownCase(
            # Attribution "step 0" is ours: the entry event's value, '' (our 'unknown') for
            # person2 though the buy says Safari, and the number 0 as the text '0'.
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_with_step_attribution",
            touch_people(with_person5=False),
            funnel("sign up", "buy", window_seconds=DAYS_7, order=order),
            posthog={
                BROWSER: {
                    "unknown": [1, 1],
                    "0": [1, 1],
                    "Chrome": [1, 1],
                    "Mac": [1, 1],
                }
            },
            seconds={
                (BROWSER, "unknown", 2): 86400.0,
                (BROWSER, "0", 2): 3600.0,
                (BROWSER, "Chrome", 2): 3600.0,
                (BROWSER, "Mac", 2): 3600.0,
            },
        ),
        f"{order}_first_touch_attribution": BreakdownCase(
            # PostHog's "first_touch" takes the first value the person's funnel events carry:
            # person2's sign-up has none, its buy says Safari. Ours is the entry event's value:
            # person2 is 'unknown' with person5 (times 86400 s and 3600 s: average 45000).
            f"{BREAKDOWN_CASES_FILE}::test_funnel_step_breakdown_with_first_touch_attribution",
            touch_people(with_person5=True),
            funnel("sign up", "buy", window_seconds=DAYS_7, order=order),
            posthog={
                BROWSER: {
                    "unknown": [1, 1],
                    "0": [1, 1],
                    "Chrome": [1, 1],
                    "Mac": [1, 1],
                    "Safari": [1, 1],
                }
            },
            ours={
                BROWSER: {
                    "unknown": [2, 2],
                    "0": [1, 1],
                    "Chrome": [1, 1],
                    "Mac": [1, 1],
                }
            },
            difference="entry_event_value",
            seconds={(BROWSER, "unknown", 2): 45000.0, (BROWSER, "Chrome", 2): 3600.0},
        ),
    }
    # PostHog's strict suite overrides this one with `pass` (a TODO: it fails there).
    if order != "strict":
        cases |= {
            f"{order}_default_funnel_days_breakdown_event": BreakdownCase(
                # No window: PostHog's 14 days, our 7, so the payment 8 days later converts
                # only for PostHog (691200 s). Step 1's `$current_url icontains
                # https://posthog.com/docs` is written as the one value of these events that
                # contains it. The 40 blog sign-ups are PostHog's dummy values that must not
                # confuse the breakdown.
                f"{BREAKDOWN_CASES_FILE}::test_basic_funnel_default_funnel_days_breakdown_event",
                [
                    at(
                        "user_1",
                        "user signed up",
                        "2020-01-02T14:00:00",
                        **{"$current_url": DOCS_X},
                    ),
                    at("user_1", "paid", "2020-01-10T14:00:00", **{"$current_url": DOCS_X}),
                ]
                + [
                    at("user_1", "user signed up", "2020-01-02T14:00:00", **{"$current_url": blog})
                    for blog in (f"https://posthog.com/blog/{c}" for c in ascii_lowercase[:20])
                    for _ in range(2)
                ],
                funnel(
                    step("user signed up", **{"$current_url": DOCS_X}),
                    "paid",
                    window_seconds=DEFAULT_FUNNEL_WINDOW_SECONDS,
                    order=order,
                ),
                posthog={"properties.$current_url": {DOCS_X: [1, 1]}},
                ours={"properties.$current_url": {DOCS_X: [1, 0]}},
                difference="default_window",
            ),
        }
    return cases


BREAKDOWN_CASES: dict[str, BreakdownCase] = {}
for _order in ("ordered", "strict", "unordered"):
    BREAKDOWN_CASES |= factory_cases(_order)

BREAKDOWN_CASES |= {
    "strict_breakdown_events_with_multiple_properties": BreakdownCase(
        f"{FUNNELS}test_funnel_strict.py::test_strict_breakdown_events_with_multiple_properties",
        [
            at("person1", "sign up", "2020-01-01T12:00:00", **{"$browser": "Chrome"}),
            at("person1", "blah", "2020-01-01T13:00:00", **{"$browser": "Chrome"}),
            at("person1", "play movie", "2020-01-01T14:00:00", **{"$browser": "Chrome"}),
            at("person2", "sign up", "2020-01-02T13:00:00", **{"$browser": "Safari"}),
            at("person2", "play movie", "2020-01-02T14:00:00", **{"$browser": "Safari"}),
        ],
        funnel("sign up", "play movie", window_seconds=DAYS_7, order="strict"),
        posthog={BROWSER: {"Chrome": [1, 0], "Safari": [1, 1]}},
        seconds={(BROWSER, "Safari", 2): 3600.0},
    ),
    "parses_breakdowns_correctly": BreakdownCase(
        # The events send utm_medium "test''123" (two quotes, as PostHog's Python literal) and
        # PostHog shows the value test'123. We keep a value as the event sent it, and bind it
        # as a parameter, never SQL text: the segment is test''123.
        f"{FUNNELS}test_funnel.py::test_parses_breakdowns_correctly",
        [
            at("user_1", "$pageview", "2024-03-22T13:46:00", utm_medium="test''123"),
            at("user_1", "$pageview", "2024-03-22T13:47:00", utm_medium="test''123"),
        ],
        funnel("$pageview", "$pageview"),
        posthog={"properties.utm_medium": {"test'123": [1, 1]}},
        ours={"properties.utm_medium": {"test''123": [1, 1]}},
        difference="value_as_sent",
        seconds={("properties.utm_medium", "test''123", 2): 60.0},  # ours
    ),
    "breakdown_step_attributions": BreakdownCase(
        # PostHog's default attribution (the first query of the test): one row, Chrome, [1, 1, 1]
        # within the 30-second window; the Safari step two in between changes nothing.
        f"{FUNNELS}test_funnel.py::test_breakdown_step_attributions",
        [
            at("user_one", "step one", "2021-05-01T00:00:00", **{"$browser": "Chrome"}),
            at("user_one", "step two", "2021-05-01T00:00:01", **{"$browser": "Safari"}),
            at("user_one", "step two", "2021-05-01T00:00:02", **{"$browser": "Chrome"}),
            at("user_one", "step three", "2021-05-01T00:00:03", **{"$browser": "Chrome"}),
        ],
        funnel("step one", "step two", "step three", window_seconds=30),
        posthog={BROWSER: {"Chrome": [1, 1, 1]}},
    ),
}


@pytest.fixture
def breakdown_conn(tmp_path: Path):
    conn = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        yield conn
    finally:
        conn.close()


def segment_rows(
    conn: duckdb.DuckDBPyConnection, dimension: str, n_steps: int
) -> tuple[Counts, dict[tuple[str, int], tuple[float | None, float | None]]]:
    """The dimension's `funnel_steps` rows: segments with users at step 1, and their times."""
    found = conn.execute(
        """
        select segment, step_index, users, avg_seconds_from_previous,
            median_seconds_from_previous
        from funnel_steps where funnel = 'posthog' and dimension = $dimension
        """,
        {"dimension": dimension},
    ).fetchall()
    users = {(s, i): u for s, i, u, _, _ in found}
    counts = {
        segment: [users.get((segment, i), 0) for i in range(1, n_steps + 1)]
        for segment in sorted({s for s, *_ in found})
        if users.get((segment, 1), 0) > 0
    }
    return counts, {(s, i): (avg, median) for s, i, _, avg, median in found}


@pytest.mark.parametrize("name", list(BREAKDOWN_CASES))
def test_posthog_breakdown_case(breakdown_conn, tmp_path: Path, name: str) -> None:
    case = BREAKDOWN_CASES[name]
    land_and_load(breakdown_conn, tmp_path / "landing", case.events, "UTC")
    settings = Settings(
        home=tmp_path,
        funnels=(case.funnel,),
        dimensions=tuple(case.posthog),
        dimension_limit=case.dimension_limit,
    )
    build_funnels(breakdown_conn, settings)
    n_steps = len(case.funnel.steps)

    want = case.ours if case.ours is not None else case.posthog
    got = {}
    for dimension in case.posthog:
        got[dimension], times = segment_rows(breakdown_conn, dimension, n_steps)
        for (d, segment, step_index), seconds in case.seconds.items():
            if d == dimension:
                assert times[(segment, step_index)] == (seconds, seconds)
    assert got == want
    if case.difference is not None:
        assert case.difference in DIFFERENCES
        assert got != case.posthog, f"{name}: documented as a difference, but now equal"
