"""Random arrival days for the tests of incremental marts and as-of reports: records of a few
users and anonymous devices, late events, re-sent copies and links that arrive later."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

FIRST_DAY = dt.date(2026, 3, 2)  # a Monday: the days cross a week and a month boundary
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(0, 31, 3)]
USERS = ["u1", "u2", "u3", "u4", "u5"]
DEVICES = ["d1", "d2", "d3", "d4"]


def random_record(rng: random.Random, arrival: dt.date, shared_ids: list[str]) -> dict[str, Any]:
    """One record of an arrival day: mostly that day, some late (up to 4 days before), near
    midnight and around the session gap often; anonymous, identified or both (a link)."""
    day = arrival - dt.timedelta(days=rng.choice([0, 0, 0, 1, 4]))
    seconds = rng.choice([rng.randrange(86400), 86400 - rng.randrange(3600), rng.randrange(3600)])
    ts = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
    kind = rng.random()
    record: dict[str, Any] = {
        "event": rng.choice(["page_view", "page_view", "signup", "purchase"]),
        "timestamp": ts.isoformat() + "Z",
    }
    if kind < 0.25:
        record["anonymous_id"] = rng.choice(DEVICES)
    elif kind < 0.4:
        record["anonymous_id"] = rng.choice(DEVICES)
        record["user_id"] = rng.choice(USERS)
    else:
        record["user_id"] = rng.choice(USERS)
    if rng.random() < 0.8:
        record["platform"] = rng.choice(["ios", "web"])
    if rng.random() < 0.7:
        record["channel"] = rng.choice(["ads", "organic"])
    if rng.random() < 0.3:
        record["revenue"] = rng.choice([1.5, 10, 0.1])
    if shared_ids and rng.random() < 0.3:
        # A re-sent copy: an event id another day (or this one) also carries.
        record["event_id"] = rng.choice(shared_ids)
    elif rng.random() < 0.5:
        record["event_id"] = f"e{rng.randrange(10**9)}"
        shared_ids.append(record["event_id"])
    return record


def write_day(landing: Path, day: dt.date, records: list[dict[str, Any]]) -> None:
    folder = landing / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "events.jsonl").write_text(text)
