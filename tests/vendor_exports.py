"""Small deterministic raw exports in each vendor's documented shape, with the truth to check.

Each of ``mixpanel_export``, ``amplitude_export``, ``segment_export``, ``posthog_export`` takes
``(seed=0, size=3)`` and returns a :class:`Fixture`: the records grouped by arrival day
(``dict[date, list[dict]]``, each dict ready for ``json.dumps`` as one JSONL line, in a
seeded-shuffled order within the day) and the truth a test checks. All four play the same story
(``size`` ordinary users plus three special visitors), over arrival days START .. START + 2:

- ordinary users: two anonymous ``page_view`` on day 0, the vendor's identify call and a
  ``signup`` carrying both ids, a ``purchase`` with revenue on day 1 (arrives day 1); the
  first user's first ``page_view`` is re-sent, identical, on arrival day 1 (a duplicate);
- ``late``: anonymous page views on day 0 (arrive day 0); the sign-up (event time day 1) arrives
  only on day 2, with a purchase; its anonymous day-0 events belong to that user in the end;
- ``shared``: one device, anonymous ``page_view`` at day 0 07:00; user A's sign-up at day 0
  07:30 arrives LATE (day 2); user B logs in on the same device at day 1 12:00 (arrives day 1)
  and buys. The device is A's (earliest linking record by event time); B keeps its own
  identified events; the anonymous view is A's;
- ``never``: a visitor who never signs up (three anonymous events; for Segment one is a
  ``page`` call).

Vendor identity calls (Mixpanel ``$identify`` and ``$merge``, Amplitude ``$identify``, Segment
``identify``, PostHog ``$identify``) are ordinary rows of the export. The truth counts them as
events of the identified user, and names Segment's calls after their type (``identify``,
``page``); ``Fixture.calls`` lists them by event id so a test can set them aside if the
implementation decides otherwise. Which records link: only those that carry an anonymous id
from CONTRACT §2's list (``$device_id``, ``device_id``, ``anonymousId``) AND an identified id;
Mixpanel's ``$identify``/``$merge`` carry ``$anon_id``/``$distinct_ids`` instead, so they do
not link (its later events with both ``$device_id`` and ``$user_id`` do).

Decoys on purpose (the contract says these are NOT the field): Segment ``originalTimestamp`` /
``sentAt`` differ from ``timestamp``; Amplitude ``server_upload_time`` differs from
``event_time``; Mixpanel ``mp_country_code`` and PostHog ``$geoip_country_code`` are not
``country`` (only Amplitude's top-level ``country`` is); a Segment ``page`` call's ``name`` is
not its event (see above). One Segment timestamp is written with a +02:00 offset; one Mixpanel
time in three is in milliseconds (the rest in whole seconds, so truth times are truncated).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

START = dt.date(2026, 3, 2)
DAYS = 3

PLATFORMS = {  # neutral key -> per-vendor value (Amplitude: (platform, os_name))
    "ios": {"mixpanel": "iOS", "amplitude": ("iOS", "ios"), "segment": "iOS", "posthog": "iOS"},
    "android": {
        "mixpanel": "Android",
        "amplitude": ("Android", "android"),
        "segment": "Android",
        "posthog": "Android",
    },
    "web": {
        "mixpanel": "Mac OS X",
        "amplitude": ("Web", "Chrome"),
        "segment": "Mac OS X",
        "posthog": "Mac OS X",
    },
}
CAMPAIGNS = [("newsletter", "spring"), ("google", "brand"), ("facebook", "retarget"), (None, None)]
COUNTRIES = {"United States": "US", "Germany": "DE", "France": "FR", "Brazil": "BR"}


@dataclass
class Hit:
    """One thing a visitor did, vendor-neutral."""

    ts: dt.datetime
    arrival: int
    event: str
    device: str
    user: str | None
    platform: str
    channel: str | None
    campaign: str | None
    country: str
    kind: str = "track"  # track | identify | merge | page
    revenue: float | None = None
    props: dict = field(default_factory=dict)
    resend_on: int | None = None  # an identical copy also arrives on this later day


@dataclass
class Fixture:
    vendor: str
    records_by_day: dict[dt.date, list[dict]]
    # identified user -> the anonymous ids linked to it (empty set: no anonymous id won)
    persons: dict[str, set[str]]
    # anonymous id -> (user, linked_at naive UTC, arrival date of the linking record)
    identities: dict[str, tuple[str, dt.datetime, dt.date]]
    events_per_person: dict[str, int]
    # event_id -> user_id, distinct_id, event, ts, platform, channel, campaign, country,
    # revenue, arrival_date (of the kept copy)
    expected: dict[str, dict[str, Any]]
    records: int  # total records in records_by_day
    duplicates: int  # re-sent copies (records - duplicates == len(expected))
    roles: dict[
        str, str
    ]  # never (person id), late_device, late_user, shared_device, user_a, user_b
    # event_id -> identify | merge | page: the vendor's identity calls (and Segment page calls)
    calls: dict[str, str] = field(default_factory=dict)


def _at(day: int, hh: int, mm: int, ss: int = 0, ms: int = 0) -> dt.datetime:
    return dt.datetime.combine(START, dt.time(hh, mm, ss, ms * 1000)) + dt.timedelta(days=day)


def _story(seed: int, size: int) -> tuple[list[Hit], dict[str, str]]:
    rng = random.Random(seed)

    def tok() -> str:
        return f"{rng.getrandbits(32):08x}"

    hits: list[Hit] = []
    for i in range(size):
        dev, user = f"dev-{tok()}", f"user-{tok()}"
        platform = list(PLATFORMS)[i % 3]
        channel, campaign = CAMPAIGNS[rng.randrange(len(CAMPAIGNS))]
        country = list(COUNTRIES)[rng.randrange(len(COUNTRIES))]
        base = dict(
            device=dev, platform=platform, channel=channel, campaign=campaign, country=country
        )
        t0 = _at(0, 8, 0) + dt.timedelta(
            minutes=13 * i + rng.randrange(10), milliseconds=rng.randrange(1000)
        )
        hits.append(
            Hit(
                t0,
                0,
                "page_view",
                user=None,
                props={"path": "/"},
                resend_on=1 if i == 0 else None,
                **base,
            )
        )
        hits.append(
            Hit(
                t0 + dt.timedelta(minutes=2),
                0,
                "page_view",
                user=None,
                props={"path": "/pricing"},
                **base,
            )
        )
        hits.append(
            Hit(
                t0 + dt.timedelta(minutes=5, seconds=-1),
                0,
                "$identify",
                user=user,
                kind="identify",
                **base,
            )
        )
        hits.append(Hit(t0 + dt.timedelta(minutes=5), 0, "signup", user=user, **base))
        hits.append(
            Hit(
                _at(1, 10, i % 60, 7),
                1,
                "purchase",
                user=user,
                revenue=round(rng.uniform(5, 200), 2),
                props={"sku": f"sku-{i}"},
                **base,
            )
        )

    late_dev, late_user = f"dev-{tok()}", f"user-{tok()}"
    base = dict(
        device=late_dev, platform="android", channel="google", campaign="brand", country="Germany"
    )
    hits += [
        Hit(_at(0, 19, 0, 5, 250), 0, "page_view", user=None, props={"path": "/"}, **base),
        Hit(_at(0, 19, 3, 40), 0, "page_view", user=None, props={"path": "/pricing"}, **base),
        Hit(_at(1, 8, 59, 59), 2, "$identify", user=late_user, kind="identify", **base),
        Hit(_at(1, 9, 0), 2, "signup", user=late_user, **base),
        Hit(_at(2, 8, 0, 0, 500), 2, "purchase", user=late_user, revenue=49.5, **base),
    ]

    shared_dev, user_a, user_b = f"dev-{tok()}", f"user-{tok()}", f"user-{tok()}"
    base = dict(
        device=shared_dev, platform="web", channel="newsletter", campaign="spring", country="France"
    )
    hits += [
        Hit(_at(0, 7, 0), 0, "page_view", user=None, props={"path": "/"}, **base),
        Hit(_at(0, 7, 29, 59), 2, "$identify", user=user_a, kind="identify", **base),
        Hit(_at(0, 7, 30), 2, "signup", user=user_a, **base),
        Hit(_at(0, 7, 30, 1), 2, "$merge", user=user_a, kind="merge", **base),
        Hit(_at(1, 11, 59, 59), 1, "$identify", user=user_b, kind="identify", **base),
        Hit(_at(1, 12, 0), 1, "login", user=user_b, **base),
        Hit(_at(1, 12, 5), 1, "purchase", user=user_b, revenue=120.0, **base),
    ]

    never_dev = f"dev-{tok()}"
    base = dict(
        device=never_dev, platform="ios", channel="facebook", campaign="retarget", country="Brazil"
    )
    hits += [
        Hit(_at(0, 21, 0, 0, 999), 0, "page_view", user=None, props={"path": "/"}, **base),
        Hit(
            _at(1, 9, 30),
            1,
            "page_view",
            user=None,
            kind="page",
            props={"path": "/pricing"},
            **base,
        ),
        Hit(_at(1, 9, 31, 15), 1, "add_to_cart", user=None, props={"sku": "sku-9"}, **base),
    ]
    roles = {
        "late_device": late_dev,
        "late_user": late_user,
        "shared_device": shared_dev,
        "user_a": user_a,
        "user_b": user_b,
        "never_device": never_dev,
    }
    return hits, roles


# --- renderers: hit -> (record, truth about what was written) ------------------------------
# truth keys: event, ts, distinct_id, anon, ident, platform, channel, campaign, country, revenue

Rendered = tuple[dict, dict]


def _utm(hit: Hit) -> dict:
    out = {}
    if hit.channel is not None:
        out["utm_source"] = hit.channel
    if hit.campaign is not None:
        out["utm_campaign"] = hit.campaign
    return out


def _truth(
    hit: Hit,
    ts,
    distinct_id,
    anon,
    ident,
    *,
    platform,
    channel,
    campaign,
    country=None,
    revenue=None,
    event=None,
    call=None,
) -> dict:
    return dict(
        event=event or hit.event,
        ts=ts,
        distinct_id=distinct_id,
        anon=anon,
        ident=ident,
        platform=platform,
        channel=channel,
        campaign=campaign,
        country=country,
        revenue=revenue,
        call=call,
    )


def _mixpanel(hit: Hit, rng: random.Random, n: int) -> Rendered | None:
    insert_id = f"{rng.getrandbits(128):032x}"
    ts = hit.ts.replace(microsecond=0)
    epoch = int((ts - dt.datetime(1970, 1, 1)).total_seconds())
    if n % 3 == 1:  # newer exports: milliseconds
        ts = hit.ts.replace(microsecond=hit.ts.microsecond // 1000 * 1000)
        epoch = int((ts - dt.datetime(1970, 1, 1)) / dt.timedelta(milliseconds=1))
    if hit.kind in ("identify", "merge"):
        props = {"time": epoch, "distinct_id": hit.user, "$insert_id": insert_id}
        if hit.kind == "identify":  # original ID merge: $identified_id / $anon_id
            props.update({"$identified_id": hit.user, "$anon_id": f"$device:{hit.device}"})
        else:
            props["$distinct_ids"] = [f"$device:{hit.device}", hit.user]
        rec = {"event": hit.event, "properties": props}
        return rec, _truth(
            hit,
            ts,
            hit.user,
            hit.device if hit.kind == "identify" else None,  # $anon_id, "$device:" dropped
            hit.user,
            platform=None,
            channel=None,
            campaign=None,
            call=hit.kind,
        )
    distinct = hit.user or f"$device:{hit.device}"
    props = {
        "time": epoch,
        "distinct_id": distinct,
        "$device_id": hit.device,
        "$insert_id": insert_id,
        "$os": PLATFORMS[hit.platform]["mixpanel"],
        "mp_lib": "web",
        "mp_country_code": COUNTRIES[hit.country],
        **_utm(hit),
        **hit.props,
    }
    if hit.user:
        props["$user_id"] = hit.user
    if hit.revenue is not None:
        props["revenue"] = hit.revenue
    event = "page_view" if hit.kind == "page" else hit.event
    rec = {"event": event, "properties": props}
    return rec, _truth(
        hit,
        ts,
        distinct,
        hit.device,
        hit.user,
        event=event,
        platform=props["$os"],
        channel=hit.channel,
        campaign=hit.campaign,
        country=COUNTRIES[hit.country],  # mp_country_code
        revenue=hit.revenue,
        call="identify" if hit.kind == "identify" else None,
    )


def _amplitude(hit: Hit, rng: random.Random, n: int) -> Rendered | None:
    if hit.kind == "merge":
        return None
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    platform, os_name = PLATFORMS[hit.platform]["amplitude"]
    event = "page_view" if hit.kind == "page" else hit.event
    rec = {
        "event_type": event,
        "user_id": hit.user,  # null while anonymous
        "device_id": hit.device,
        "event_time": hit.ts.strftime(fmt),
        "client_event_time": hit.ts.strftime(fmt),
        "server_upload_time": (hit.ts + dt.timedelta(seconds=2, microseconds=3)).strftime(fmt),
        "$insert_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "platform": platform,
        "os_name": os_name,
        "country": hit.country,
        "event_properties": dict(hit.props),
        "user_properties": _utm(hit),
        "revenue": hit.revenue,  # null except on purchases
    }
    return rec, _truth(
        hit,
        hit.ts,
        hit.user or hit.device,
        hit.device,
        hit.user,
        event=event,
        platform=platform,
        channel=hit.channel,
        campaign=hit.campaign,
        country=hit.country,
        revenue=hit.revenue,
        call="identify" if hit.kind == "identify" else None,
    )


def _segment(hit: Hit, rng: random.Random, n: int) -> Rendered | None:
    if hit.kind == "merge":
        return None
    ts_text = hit.ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{hit.ts.microsecond // 1000:03d}Z"
    if n % 5 == 3:  # a client that sends its local offset
        local = hit.ts + dt.timedelta(hours=2)
        ts_text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{hit.ts.microsecond // 1000:03d}+02:00"
    ts = hit.ts.replace(microsecond=hit.ts.microsecond // 1000 * 1000)
    context: dict[str, Any] = {
        "os": {"name": PLATFORMS[hit.platform]["segment"]},
        "library": {"name": "analytics.js", "version": "2.11.1"},
    }
    if hit.channel is not None:
        context["campaign"] = {"source": hit.channel, "medium": "email"}
        if hit.campaign is not None:
            context["campaign"]["name"] = hit.campaign
    rec: dict[str, Any] = {
        "anonymousId": hit.device,
        "messageId": f"ajs-next-{rng.getrandbits(64):016x}",
        "timestamp": ts_text,
        "originalTimestamp": (ts - dt.timedelta(seconds=3)).isoformat() + "Z",
        "sentAt": (ts + dt.timedelta(seconds=1)).isoformat() + "Z",
        "context": context,
    }
    if hit.user is not None:
        rec["userId"] = hit.user
    elif n % 2:
        rec["userId"] = None
    platform = PLATFORMS[hit.platform]["segment"]
    if hit.kind == "identify":
        rec.update(type="identify", traits={"email": f"{hit.user}@example.com", "plan": "free"})
        event = "$identify"
    elif hit.kind == "page":
        rec.update(
            type="page",
            name="Pricing",
            properties={
                **hit.props,
                "url": f"https://shop.example{hit.props['path']}",
                "title": "Pricing",
            },
        )
        event = "$pageview"
    else:
        props = dict(hit.props)
        if hit.revenue is not None:
            props["revenue"] = hit.revenue
        rec.update(type="track", event=hit.event, properties=props)
        event = hit.event
    return rec, _truth(
        hit,
        ts,
        hit.user or hit.device,
        hit.device,
        hit.user,
        event=event,
        platform=platform,
        channel=hit.channel,
        campaign=hit.campaign if hit.channel is not None else None,
        revenue=hit.revenue,
        call=None if hit.kind == "track" else hit.kind,
    )


def _posthog(hit: Hit, rng: random.Random, n: int) -> Rendered | None:
    if hit.kind == "merge":
        return None
    ts = hit.ts.replace(microsecond=hit.ts.microsecond // 1000 * 1000)
    props = {
        "$device_id": hit.device,
        "$os": PLATFORMS[hit.platform]["posthog"],
        "$lib": "web",
        "$geoip_country_code": COUNTRIES[hit.country],
        **_utm(hit),
        **hit.props,
    }
    event = {"identify": "$identify", "page": "$pageview"}.get(hit.kind, hit.event)
    if hit.kind == "identify":
        props["$anon_distinct_id"] = hit.device
    if hit.revenue is not None:
        props["$revenue"] = hit.revenue
    distinct = hit.user or hit.device
    rec = {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event": event,
        "distinct_id": distinct,
        "timestamp": ts.isoformat(timespec="milliseconds") + "+00:00",
        "properties": props,
    }
    return rec, _truth(
        hit,
        ts,
        distinct,
        hit.device,
        hit.user,
        event=event,
        platform=props["$os"],
        channel=hit.channel,
        campaign=hit.campaign,
        country=COUNTRIES[hit.country],  # $geoip_country_code
        revenue=hit.revenue,
        call="identify" if hit.kind == "identify" else None,
    )


def _build(vendor: str, render: Callable[..., Rendered | None], seed: int, size: int) -> Fixture:
    hits, story_roles = _story(seed, size)
    rng = random.Random(f"{vendor}:{seed}")
    days: dict[int, list[tuple[dict, dict]]] = {d: [] for d in range(DAYS)}
    kept: list[tuple[dict, dict, int]] = []  # (record, truth, arrival)
    calls: dict[str, str] = {}
    duplicates = 0
    for n, hit in enumerate(hits):
        rendered = render(hit, rng, n)
        if rendered is None:
            continue
        rec, truth = rendered
        days[hit.arrival].append((rec, truth))
        kept.append((rec, truth, hit.arrival))
        if truth["call"]:
            calls[_record_id(rec)] = truth["call"]
        if hit.resend_on is not None:
            days[hit.resend_on].append((copy.deepcopy(rec), truth))
            duplicates += 1
    records_by_day: dict[dt.date, list[dict]] = {}
    for d, items in days.items():
        rng.shuffle(items)
        records_by_day[START + dt.timedelta(days=d)] = [rec for rec, _ in items]

    # identity truth: among records carrying both ids, earliest event time (then user id)
    links: dict[str, tuple] = {}
    for _, t, arrival in kept:
        if t["anon"] and t["ident"] and t["anon"] != t["ident"]:
            key = (t["ts"], t["ident"], arrival)
            links[t["anon"]] = min(links.get(t["anon"], key), key)
    identities = {a: (k[1], k[0], START + dt.timedelta(days=k[2])) for a, k in links.items()}
    persons: dict[str, set[str]] = {t["ident"]: set() for _, t, _ in kept if t["ident"]}
    for anon, (user, _, _) in identities.items():
        persons[user].add(anon)

    expected: dict[str, dict] = {}
    for rec, t, arrival in kept:
        person = t["ident"] or (
            identities[t["anon"]][0] if t["anon"] in identities else t["distinct_id"]
        )
        expected[_record_id(rec)] = {
            "user_id": person,
            "distinct_id": t["distinct_id"],
            "event": t["event"],
            "ts": t["ts"],
            "platform": t["platform"],
            "channel": t["channel"],
            "campaign": t["campaign"],
            "country": t["country"],
            "revenue": t["revenue"],
            "arrival_date": START + dt.timedelta(days=arrival),
        }
    never_dev = story_roles["never_device"]
    never = f"$device:{never_dev}" if vendor == "mixpanel" else never_dev
    roles = {**story_roles, "never": never}
    fixture = Fixture(
        vendor=vendor,
        records_by_day=records_by_day,
        persons=persons,
        identities=identities,
        events_per_person=dict(Counter(e["user_id"] for e in expected.values())),
        expected=expected,
        records=sum(len(v) for v in records_by_day.values()),
        duplicates=duplicates,
        roles=roles,
        calls=calls,
    )
    _check_story(fixture)
    return fixture


def _record_id(rec: dict) -> str:
    for key in ("uuid", "messageId", "$insert_id"):
        if rec.get(key):
            return rec[key]
    return rec["properties"]["$insert_id"]


def _check_story(fx: Fixture) -> None:
    """The story's promises hold for this vendor's rendering (guards the fixture itself)."""
    r = fx.roles
    assert fx.identities[r["shared_device"]][0] == r["user_a"], fx.identities
    assert fx.identities[r["shared_device"]][2] == START + dt.timedelta(days=2)
    assert fx.identities[r["late_device"]][0] == r["late_user"]
    assert fx.identities[r["late_device"]][2] == START + dt.timedelta(days=2)
    assert r["never_device"] not in fx.identities
    assert fx.persons[r["user_b"]] == set()
    assert fx.events_per_person[r["never"]] == 3
    assert fx.records - fx.duplicates == len(fx.expected)


def mixpanel_export(seed: int = 0, size: int = 3) -> Fixture:
    """Mixpanel raw export rows ``{"event", "properties": {...}}``, with $identify and $merge."""
    return _build("mixpanel", _mixpanel, seed, size)


def amplitude_export(seed: int = 0, size: int = 3) -> Fixture:
    """Amplitude export rows (``event_type``, ``user_id`` null while anonymous, ...)."""
    return _build("amplitude", _amplitude, seed, size)


def segment_export(seed: int = 0, size: int = 3) -> Fixture:
    """Segment track/identify/page calls."""
    return _build("segment", _segment, seed, size)


def posthog_export(seed: int = 0, size: int = 3) -> Fixture:
    """PostHog batch export rows, with ``$identify`` carrying ``$anon_distinct_id``."""
    return _build("posthog", _posthog, seed, size)


ALL_EXPORTS = {
    "mixpanel": mixpanel_export,
    "amplitude": amplitude_export,
    "segment": segment_export,
    "posthog": posthog_export,
}
