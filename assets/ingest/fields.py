"""Where each record field comes from (CONTRACT §2): the one alias table of ingest.

A record field (the user, the event name, the time, ...) is taken from the first of its source
names that the record holds (JSON null counts as absent). The sources are, in order: the
project's own `aliases` from eventpulse.yaml, then the built-in names below, which cover the
contract's aliases and where Mixpanel, Amplitude, Segment and PostHog put each field in their
raw exports. A dotted name is a path into nested JSON. A name that starts with `properties.`
is looked up in the record's properties after the merge of `parse_records.sql`, which also
holds every top-level key that is not a record field (a CSV column, Amplitude's
`user_properties`, Segment's `context`); any other name is looked up in the record as sent.

`parse_records.sql` reads every source of every field in one bulk SQL pass, grouped (GROUPS)
so that the common case stays cheap, and takes each field's first present value by the
positions `source_paths` gives it: the same code for built-in and configured names. Records
in the contract's shape never read the vendors' paths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipelines.errors import EventpulseError

PROPERTIES_PREFIX = "properties."
MAX_SOURCES = 12  # per field and group: the slots of parse_records.sql's first_present

# Field -> the contract's own source names (§2 aliases), tried in this order after the
# configured ones: data in the contract's shape reads exactly as before vendor shapes existed.
CONTRACT_SOURCES: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "uuid", "messageId", "insert_id", "$insert_id"),
    # An identified user (§2 Identity).
    "user_id": ("user_id", "userId"),
    # Mixpanel's and PostHog's id: identified unless it is anonymous (it equals the record's
    # anonymous id, or starts with "$device:"; parse_records.sql decides).
    "distinct_id": ("distinct_id",),
    "anonymous_id": ("anonymous_id", "anonymousId", "device_id", "$device_id"),
    # The id the record was sent under (events.distinct_id): the contract's user aliases in its
    # order (before identity existed, the user).
    "sent_id": ("user_id", "distinct_id", "userId", "anonymous_id", "anonymousId"),
    "event": ("event", "event_type", "event_name", "name"),
    "timestamp": ("timestamp", "time", "ts", "event_time", "originalTimestamp"),
    "properties": ("properties",),
    "platform": ("properties.platform", "properties.$os"),
    "channel": ("properties.channel", "properties.utm_source"),
    "campaign": ("properties.campaign", "properties.utm_campaign"),
    "revenue": ("properties.revenue", "properties.$revenue"),
    "country": ("properties.country",),
}
# Field -> where the vendors' raw exports put it, tried after the contract's names. Read only
# for records that may be in a vendor's shape (parse_records.sql, `vendor_shaped`): most logs in
# the contract's shape never pay for these paths.
VENDOR_SOURCES: dict[str, tuple[str, ...]] = {
    "event_id": ("properties.$insert_id",),  # Mixpanel
    "user_id": (
        "$user_id",
        "properties.$user_id",  # Mixpanel ID merge
        "properties.$identified_id",  # Mixpanel $identify
    ),
    "distinct_id": ("properties.distinct_id",),  # Mixpanel
    "anonymous_id": (
        "previousId",  # Segment alias: the id the user had before
        "properties.anonymous_id",
        "properties.anonymousId",
        "properties.device_id",
        "properties.$device_id",  # Mixpanel, PostHog
        "properties.$anon_id",  # Mixpanel $identify
        "properties.$anon_distinct_id",  # PostHog $identify
    ),
    "sent_id": (
        "$user_id",
        "properties.distinct_id",
        "properties.$user_id",
        "device_id",  # Amplitude, anonymous devices
        "$device_id",
        "properties.$device_id",
    ),
    "event": (),
    "timestamp": ("properties.time",),  # Mixpanel: epoch seconds inside properties
    "properties": ("event_properties",),  # Amplitude
    "call_type": ("type",),  # Segment: track, identify, page, ...
    "platform": (
        "properties.os_name",  # Amplitude (its `platform` is merged into properties)
        "properties.context.os.name",  # Segment
    ),
    "channel": (
        "properties.user_properties.utm_source",  # Amplitude
        "properties.context.campaign.source",  # Segment
    ),
    "campaign": (
        "properties.user_properties.utm_campaign",
        "properties.context.campaign.name",
    ),
    "revenue": (),
    "country": (
        "properties.$geoip_country_code",  # PostHog
        "properties.mp_country_code",  # Mixpanel
        "properties.context.location.country",  # Segment
    ),
}
# The fields whose value is the record itself, not a property: an alias for them may not point
# into the properties (they are read before the properties are known).
RECORD_LEVEL_FIELDS = ("properties",)
# Segment's calls other than `track` carry no event name; they load as the events PostHog's
# Segment destination makes of them (parse_records.sql, segment_call_event).
SEGMENT_CALL_EVENTS = {
    "identify": "$identify",
    "alias": "$create_alias",
    "group": "$groupidentify",
    "page": "$pageview",
    "screen": "$screen",
}


# The groups a field's sources are read from, in the order a field's value is looked for. Every
# top-level key (the contract's names, and the configured and vendor names that are plain keys)
# is read with one `json_transform` of the record into a struct (the cheapest read DuckDB has,
# and one parse of the raw text); the keys of the properties with a second one. Dotted
# configured names and the vendors' nested paths are read with `json_extract`, the vendors'
# only for records that may be in a vendor's shape. The `*_keys` groups are positions in the
# record struct: a field's configured (or vendor) top-level names are all keys, or all paths,
# so that they keep their order.
GROUPS = (
    "configured_record_keys",
    "configured_record",
    "configured_properties",
    "record",
    "properties",
    "vendor_record_keys",
    "vendor_record",
    "vendor_properties",
)
KEY_GROUPS = ("record", "properties")  # read as struct fields: keys, not paths
# The slots parse_records.sql's macro for each group has: a source beyond them would never be
# read. The configured groups take MAX_SOURCES (their macros, CONFIGURED_MACROS, are written
# for each load with only the slots its configuration fills: SourcePaths.configured_macros);
# the built-in ones what their names below need (source_paths checks), since every slot costs
# planning time even when it folds away.
GROUP_SLOTS = {
    "configured_record_keys": MAX_SOURCES,  # first_key
    "configured_record": MAX_SOURCES,  # first_present
    "configured_properties": MAX_SOURCES,  # first_present
    "record": 5,  # contract_key
    "properties": 2,  # property_key
    "vendor_record_keys": 3,  # vendor_key
    "vendor_record": 6,  # vendor_value
    "vendor_properties": 6,  # vendor_value
}
# Position groups whose entries live in another group's list (the record struct).
LIST_OF = {"configured_record_keys": "record", "vendor_record_keys": "record"}
# The macros of parse_records.sql that read the configured groups: each takes the list of
# values (or the record struct) and a field's positions in it, and gives the first present
# value; `{0}` is one slot's position, `positions[i]`. A value of json_extract's list is absent
# when it is JSON null (parse_records.sql's `present`, written out: these macros are created
# before that file runs); json_transform's struct has SQL NULL for it already.
CONFIGURED_MACROS = {
    "first_key": ("configured_record_keys", "(doc, positions)", "struct_extract_at(doc, {0})"),
    "first_present": (
        ("configured_record", "configured_properties"),
        "(vals, positions)",
        "case when vals[{0}]::varchar = 'null' then null else vals[{0}] end",
    ),
}


@dataclass(frozen=True)
class SourcePaths:
    """The parameters of `parse_records.sql`: for each list of sources its keys or JSON paths,
    and per field the 1-based positions of its sources in each group (GROUPS; a `*_keys` group
    indexes the record's keys), in the order tried.

    A configured name inside the properties is tried after the configured top-level names, the
    one case where the order differs from `source_lists`.
    """

    groups: dict[str, list[str]]  # list of sources -> its keys or paths
    positions: dict[str, dict[str, list[int]]]  # field -> group -> positions in that group
    names: dict[str, list[str]]  # for the quarantine detail: "no timestamp (timestamp, time, ...)"

    @property
    def top_level_names(self) -> list[str]:
        """The top-level key of every source, properties included (a CSV column that holds a
        property is a top-level key until the properties are merged), in the order tried."""
        keys = (
            n.removeprefix(PROPERTIES_PREFIX).split(".")[0]
            for ns in self.names.values()
            for n in ns
        )
        return list(dict.fromkeys(keys))

    def configured_macros(self) -> str:
        """The CREATE MACRO statements of CONFIGURED_MACROS, each with as many slots as the
        most sources a field has in its groups (at least one). Planning is serial, and a slot
        costs it even when its position folds away: twelve slots each took ~0.04 s more of a
        1M-record load with two aliases than one (session 12)."""
        statements = []
        for macro, (groups, arguments, slot) in CONFIGURED_MACROS.items():
            groups = (groups,) if isinstance(groups, str) else groups
            slots = max(
                [1] + [len(found[group]) for found in self.positions.values() for group in groups]
            )
            values = ", ".join(slot.format(f"positions[{i}]") for i in range(1, slots + 1))
            statements.append(
                f"create or replace temp macro {macro}{arguments} as coalesce({values});"
            )
        return "\n".join(statements)

    def parameters(self) -> dict[str, object]:
        # The keys of a key group as a json_transform structure: {"event_id": "JSON", ...}.
        specs = {
            f"{group}_spec": json.dumps({key: "JSON" for key in self.groups[group]})
            for group in KEY_GROUPS
        }
        paths = {f"{g}_paths": paths for g, paths in self.groups.items() if g not in KEY_GROUPS}
        return {
            "event_key": 1 + self.groups["record"].index("event"),
            **specs,
            **paths,
            **{f"{field}_sources": positions for field, positions in self.positions.items()},
            **{f"{field}_names": ", ".join(names) for field, names in self.names.items()},
        }


def source_lists(
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Every field's source names in the order they are tried, each with where it comes from
    ("configured", "contract" or "vendor"); a name listed twice keeps its first place."""
    aliases = aliases or {}
    lists = {}
    for field in VENDOR_SOURCES:
        configured = list(aliases.get(field, ()))
        if field == "sent_id":
            # A configured user or anonymous id is also what the record was sent under.
            configured = [*aliases.get("user_id", ()), *aliases.get("anonymous_id", ())]
        ordered = [(name, "configured") for name in configured]
        ordered += [(name, "contract") for name in CONTRACT_SOURCES.get(field, ())]
        ordered += [(name, "vendor") for name in VENDOR_SOURCES[field]]
        first: dict[str, str] = {}
        for name, origin in ordered:
            first.setdefault(name, origin)
        lists[field] = list(first.items())
    return lists


def source_paths(aliases: Mapping[str, Sequence[str]] | None = None) -> SourcePaths:
    """Each group's keys or paths, and each field's positions in them."""
    groups: dict[str, list[str]] = {group: [] for group in GROUPS if group not in LIST_OF}
    places: dict[str, list[tuple[str, int]]] = {}
    lists = source_lists(aliases)
    for field, names in lists.items():
        configured = sum(origin == "configured" for _, origin in names)
        if configured > MAX_SOURCES:
            raise EventpulseError(
                f"eventpulse.yaml: aliases gives {field} {configured} source names; at most "
                f"{MAX_SOURCES} are tried, so remove some."
            )
        located = [(origin, *_located(field, name)) for name, origin in names]
        # An origin's top-level names are read as keys only when none of them is a path.
        dotted = {origin for origin, inside, name in located if not inside and "." in name}
        places[field] = []
        for origin, in_properties, name in located:
            prefix = "" if origin == "contract" else origin
            group = "_".join(filter(None, (prefix, "properties" if in_properties else "record")))
            if origin != "contract" and not in_properties and origin not in dotted:
                group = f"{group}_keys"
            listed = LIST_OF.get(group, group)
            entry = name if listed in KEY_GROUPS else json_path(name)
            if entry not in groups[listed]:
                groups[listed].append(entry)
            places[field].append((group, groups[listed].index(entry)))
    positions = {
        field: {group: [1 + index for g, index in found if g == group] for group in GROUPS}
        for field, found in places.items()
    }
    for field, groups_of_field in positions.items():
        for group, found in groups_of_field.items():
            if len(found) > GROUP_SLOTS[group]:
                # Only the built-in names can get here (MAX_SOURCES bounds the configured ones):
                # a name added to CONTRACT_SOURCES or VENDOR_SOURCES needs a slot in its macro.
                raise ValueError(
                    f"{field} has {len(found)} sources in group {group}, which parse_records.sql "
                    f"reads {GROUP_SLOTS[group]} of: add slots to its macro and GROUP_SLOTS"
                )
    names = {field: [name for name, _ in found] for field, found in lists.items()}
    return SourcePaths(groups, positions, names)


def _located(field: str, name: str) -> tuple[bool, str]:
    """Whether a source of `field` is read from the properties, and its name there."""
    if name.startswith(PROPERTIES_PREFIX) and field not in RECORD_LEVEL_FIELDS:
        return True, name.removeprefix(PROPERTIES_PREFIX)
    return False, name


def json_path(name: str) -> str:
    """A dotted name as a DuckDB JSON path, every key quoted: `context.os.name` ->
    `$."context"."os"."name"` (so `$insert_id` or a key with spaces needs no escaping)."""
    keys = name.split(".")
    return "$" + "".join('."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in keys)
