"""The glossary documents (CONTRACT §3): one plain-language definition per metric and table.

They are the corpus's answer to "what does X mean?", and they are always there, even before
any stage has produced data.
"""

from __future__ import annotations

from assets.corpus.documents import Document


def glossary_documents() -> list[Document]:
    """One `glossary:<term>` document per metric and table of the contract."""
    return [
        Document(
            doc_id=f"glossary:{term}",
            kind="glossary",
            title=f"Glossary: {title}",
            source="glossary (CONTRACT §3)",
            date=None,
            body=text,
        )
        for term, (title, text) in GLOSSARY.items()
    ]


GLOSSARY: dict[str, tuple[str, str]] = {
    "events": (
        "events (table and metric)",
        "The events table holds clean, deduplicated events: event_id, user_id, event, ts (UTC "
        "timestamp), event_date (the day in the project's time zone), platform, channel, campaign, country, revenue (NULL when "
        "absent), properties (JSON), arrival_date and source_file. Every input record ends in "
        "exactly one place: the events table or the quarantine table with a reason. As a "
        "metric in daily_metrics, events counts the day's events in a segment.",
    ),
    "quarantine": (
        "quarantine (table)",
        "The quarantine table keeps rejected input records with arrival_date, source_file, "
        "line_no, reason, detail and raw. Reasons: malformed_record (unparseable line or row), "
        "missing_user_id, missing_event, missing_timestamp, invalid_timestamp, "
        "future_timestamp (more than 1 day after the end of the arrival day), invalid_revenue "
        "(not a number), invalid_type (a field of the wrong JSON type), oversized_record (over "
        "1 MiB) and duplicate_event_id (another copy of that event id is the one kept). "
        "Nothing is dropped silently.",
    ),
    "ingest_log": (
        "ingest_log (table)",
        "The ingest_log table has one row per partition load: arrival_date, files, records, "
        "loaded, quarantined, duplicates, started_at, finished_at. For each arrival day, the "
        "records read equal its rows in events plus its rows in quarantine. Loading a "
        "partition again replaces that partition's rows, so counts never double.",
    ),
    "users": (
        "users (table)",
        "The users table has one row per user: user_id, first_seen_at, first_seen_date, "
        "acquisition_platform, acquisition_channel and acquisition_campaign (from the user's "
        "first event), last_seen_at, events, sessions, purchases and revenue.",
    ),
    "sessions": (
        "sessions (table and metric)",
        "A session is a run of one user's events without a gap longer than "
        "session_gap_seconds (default 1800 seconds, 30 minutes); a longer gap starts a new "
        "session. The sessions table has session_id, user_id, started_at, ended_at, "
        "duration_seconds, events, platform and channel (of the session's first event). As a "
        "metric in daily_metrics, sessions counts sessions started that day, in the segment "
        "of their first event.",
    ),
    "daily_metrics": (
        "daily_metrics (table)",
        "The daily_metrics table has one row per day and segment: metric_date, dimension "
        "('all' or a configured dimension: platform and channel by default, also campaign, "
        "country or properties.<key>), segment ('all' for dimension 'all'), active_users, "
        "new_users, sessions, events, purchasers, revenue and conversion_rate. Every day from "
        "the first to the last event date has an ('all', 'all') row, zeros included.",
    ),
    "segment": (
        "dimension and segment",
        "A dimension splits users: 'all' (everyone), 'platform' (for example web, ios, "
        "android), 'channel' (acquisition or traffic source, for example organic or ads), or "
        "any other configured one (campaign, country, properties.<key>). A segment is one "
        "value of a dimension: 'unknown' when missing, 'other' beyond the dimension_limit most "
        "active values. In daily_metrics a user is active in a segment on a day when they have "
        "an event that day whose own value is that segment; cohorts use the value of the "
        "user's first event, fixed for life; funnels the counted attempt's entry event.",
    ),
    "active_users": (
        "active users (metric)",
        "active_users (daily active users, DAU): distinct users with at least one event that "
        "day in the segment.",
    ),
    "new_users": (
        "new users (metric)",
        "new_users: users whose first-ever event is that day, attributed to the segment of "
        "that first event.",
    ),
    "purchasers": (
        "purchasers (metric)",
        "purchasers: distinct users with a conversion event (default purchase) that day in the "
        "segment.",
    ),
    "revenue": (
        "revenue (metric)",
        "revenue: the sum of the revenue property of the day's events in the segment (0 when "
        "there is none). Cohort revenue is the cohort's revenue in a period.",
    ),
    "conversion_rate": (
        "conversion rate (metric)",
        "conversion_rate = purchasers / active_users, per day and segment.",
    ),
    "funnel_steps": (
        "funnel_steps (table)",
        "The funnel_steps table has one row per funnel, segment and step over the whole "
        "history: funnel, dimension, segment, step_index (1-based), step (the event name, with "
        "its filter when it has one, as page_view[path=/pricing]), users, "
        "conversion_from_first (users at the step / users at step 1), conversion_from_previous "
        "(users at the step / users at the previous step, 1.0 for step 1), "
        "median_seconds_from_previous and avg_seconds_from_previous.",
    ),
    "funnel_daily": (
        "funnel_daily (table)",
        "The funnel_daily table has funnel, entry_date, step_index, step and users: the users "
        "whose counted attempt entered the funnel on that date and reached at least that step.",
    ),
    "funnel": (
        "funnel (definition)",
        "A funnel is an ordered list of events (steps) within a window (default 7 days). In "
        "ordered mode an attempt starts at any step-1 event; each next step is the earliest "
        "event of that step at or after the previous matched step and within the window. A "
        "user reaches the furthest step any attempt reaches; the counted attempt is the "
        "earliest one reaching it, and its entry event's platform and channel are the user's "
        "segment (first-touch). Strict mode breaks an attempt on any other event between two "
        "matched steps; unordered mode accepts the steps in any order within the window. A "
        "step may filter its event by properties (where: every key must match, a list means "
        "any of its values). An exclusion drops an attempt that has the exclusion event "
        "strictly between its matched from_step and to_step events.",
    ),
    "retention": (
        "retention (table)",
        "The retention table has definition, granularity ('day', 'week' or 'month'), mode "
        "('exact' or 'on_or_after'), cohort_start, cohort_users, period, retained_users, "
        "retention_rate and is_complete. A cohort is the calendar period of the user's "
        "first-ever event (definition 'any'), or of their first start_event (a definition "
        "such as 'buyers': start_event signup, return_event purchase); returning means any "
        "event, or the return_event. Period N is the calendar difference between the "
        "cohort's period and the activity's period. Exact: retained in period N when the user "
        "returns in period N. On or after: in period N or any later period. Period 0 is 1.0 "
        "when returning means any event. is_complete is false while a period is still running.",
    ),
    "timezone": (
        "time zone, dates and days",
        "Timestamps (ts, started_at, first_seen_at) are UTC. Every date, day, week and month "
        "(event_date, metric_date, entry_date, cohort_start, report days) is in the project's "
        "time zone, the timezone key of eventpulse.yaml (default UTC); weeks start on Monday. "
        "A day with a daylight-saving change has 23 or 25 hours.",
    ),
    "retention_rate": (
        "retention rate (metric)",
        "retention_rate: retained users (or active cohort users) in a period divided by the "
        "cohort's users.",
    ),
    "cohorts": (
        "cohorts (table)",
        "The cohorts table holds acquisition cohorts: cohort_granularity ('week' or 'month'), "
        "cohort_start, dimension, segment (the user's acquisition platform or channel, fixed "
        "for life), cohort_users, period_index, active_users, retention_rate, churn_rate, "
        "revenue, cumulative_revenue and ltv.",
    ),
    "churn_rate": (
        "churn rate (metric)",
        "churn_rate = 1 - retention_rate for a cohort and period.",
    ),
    "ltv": (
        "LTV, lifetime value (metric)",
        "ltv = cumulative_revenue / cohort_users: the cohort's revenue per user through that "
        "period. cumulative_revenue is the cohort's revenue through that period.",
    ),
    "anomalies": (
        "anomalies (table)",
        "The anomalies table has one row per scored day, metric and segment: metric_date, "
        "metric, dimension, segment, value, expected, score (0 to 1, higher is more "
        "anomalous), is_anomaly, direction ('spike' or 'dip') and explanation (a sentence "
        "naming the metric, the segment, the value, the expected value and the relative "
        "change). Metrics scored: active_users, new_users, sessions, events, purchasers, "
        "revenue and conversion_rate, for dimension all and every platform and channel.",
    ),
    "corpus": (
        "corpus (RAG table)",
        "The corpus is the LanceDB table behind eventpulse ask and search: chunk_id, doc_id, "
        "kind (report, anomaly, funnel, cohort, glossary or doc), title, source, date, text "
        "and vector (all-MiniLM-L6-v2). It holds reports, flagged anomalies, weekly funnel "
        "and cohort summaries, this glossary and the user's documents under docs/.",
    ),
}
