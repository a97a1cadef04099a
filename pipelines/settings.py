"""Home folder and `eventpulse.yaml`: loaded and validated in one place (CONTRACT §1).

Every problem is reported as one sentence naming the key and the fix; unknown keys are errors,
because a misspelt key silently falling back to a default would hide the problem.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import os
import re
import urllib.parse
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pipelines.errors import EventpulseError
from pipelines.landing import landing_dates


@dataclass(frozen=True)
class Metric:
    """A column of `daily_metrics` (CONTRACT §3). `kind` decides how it is scored and written:
    a count of users or things, an amount summed over the purchases, or a rate of two counts."""

    name: str
    label: str
    kind: str  # "count" | "amount" | "rate"
    per: str | None = None  # amount: the count of transactions; rate: its denominator


# The daily metrics of CONTRACT §3, in its order: the one list every stage builds on.
DAILY_METRICS = (
    Metric("active_users", "Active users", "count"),
    Metric("new_users", "New users", "count"),
    Metric("sessions", "Sessions", "count"),
    Metric("events", "Events", "count"),
    Metric("purchasers", "Purchasers", "count"),
    Metric("revenue", "Revenue", "amount", per="purchasers"),
    Metric("conversion_rate", "Conversion", "rate", per="active_users"),
)
METRIC_NAMES = tuple(metric.name for metric in DAILY_METRICS)
FUNNEL_ORDERS = ("ordered", "strict", "unordered")
# Record fields that `aliases` may give more source names (CONTRACT §1, §2); where each is read
# from by default is assets/ingest/fields.py.
ALIAS_FIELDS = (
    "event_id",
    "user_id",
    "distinct_id",
    "anonymous_id",
    "event",
    "timestamp",
    "properties",
    "platform",
    "channel",
    "campaign",
    "revenue",
    "country",
)
ANOMALY_DIRECTIONS = ("both", "spike", "dip")
DEFAULT_FUNNEL_WINDOW_SECONDS = 7 * 86400
# Event columns a step's `where` compares directly (CONTRACT §2 lifted properties, all text);
# any other key is a key of the event's `properties` JSON (CONTRACT §3 Funnel semantics).
LIFTED_FILTER_COLUMNS = ("platform", "channel", "campaign", "country")
# Breakdowns (CONTRACT §1 `dimensions`, §3): a lifted column, or `properties.<key>` for any key.
DIMENSION_COLUMNS = LIFTED_FILTER_COLUMNS
PROPERTY_DIMENSION_PREFIX = "properties."
DEFAULT_DIMENSIONS = ("platform", "channel")
DEFAULT_DIMENSION_LIMIT = 25
# The SQL reads each dimension into its own column (sql/macros/segments.sql): at most this many.
MAX_DIMENSIONS = 8

# A step's `where`: (key, accepted values as text) in the order written; () = no filter.
StepFilter = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Exclusion:
    """An exclusion event of a funnel: an attempt with this event strictly between its matched
    `from_step` and `to_step` events (1-based) is not counted (CONTRACT §3)."""

    event: str
    from_step: int
    to_step: int


@dataclass(frozen=True)
class Funnel:
    name: str
    steps: tuple[str, ...]  # the event name of each step
    window_seconds: int = DEFAULT_FUNNEL_WINDOW_SECONDS
    order: str = "ordered"
    where: tuple[StepFilter, ...] = ()  # per step, or () when no step has a filter
    exclusions: tuple[Exclusion, ...] = ()

    @property
    def filters(self) -> tuple[StepFilter, ...]:
        """Each step's filter (() for a bare event name)."""
        return self.where or tuple(() for _ in self.steps)

    @property
    def step_names(self) -> tuple[str, ...]:
        """Each step as `funnel_steps.step` names it: `event[key=value|value,key=value]`."""
        return tuple(
            step_name(event, where) for event, where in zip(self.steps, self.filters, strict=True)
        )


def step_name(event: str, where: StepFilter) -> str:
    """`page_view[path=/pricing|/plans,plan=pro]`: keys in the order written (CONTRACT §3)."""
    if not where:
        return event
    conditions = ",".join(f"{key}={'|'.join(values)}" for key, values in where)
    return f"{event}[{conditions}]"


@dataclass(frozen=True)
class RetentionDefinition:
    """A retention definition (CONTRACT §3 retention): the cohort is the period of the user's
    first `start_event` (first event of any kind when None); returning means a `return_event`
    (any event when None)."""

    name: str
    start_event: str | None = None
    return_event: str | None = None


@dataclass(frozen=True)
class AnomalySettings:
    contamination: float | str = "auto"
    min_history_days: int = 14
    metrics: tuple[str, ...] = METRIC_NAMES
    directions: str = "both"


@dataclass(frozen=True)
class AlertSettings:
    # A secret (anyone holding it can post to the channel): never logged, printed or written.
    webhook_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LlmSettings:
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


DEFAULT_FUNNELS = (Funnel("checkout", ("page_view", "signup", "add_to_cart", "purchase")),)
DEFAULT_RETENTION = (RetentionDefinition("any"),)


@dataclass(frozen=True)
class Settings:
    home: Path
    config_path: Path | None = None
    start_date: dt.date | None = None
    conversion_event: str = "purchase"
    session_gap_seconds: int = 1800
    funnels: tuple[Funnel, ...] = DEFAULT_FUNNELS
    retention: tuple[RetentionDefinition, ...] = DEFAULT_RETENTION
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # Record field -> more source names, tried before the built-in ones (dotted: nested JSON).
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    currency: str = "USD"  # ISO 4217 code of `revenue`: how reports write money
    # IANA zone of every date, day, week and month (CONTRACT §3); `ts` stays UTC.
    timezone: str = "UTC"
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS  # validated names (CONTRACT §3 Breakdowns)
    dimension_limit: int = DEFAULT_DIMENSION_LIMIT  # kept values per dimension; the rest 'other'

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing" / "events"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def lancedb_dir(self) -> Path:
        return self.home / "lancedb"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def docs_dir(self) -> Path:
        return self.home / "docs"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    @property
    def labels_path(self) -> Path:
        return self.home / "demo_labels.json"

    def partition_start(self, today: dt.date | None = None) -> dt.date:
        """First daily partition: config, else the earliest landing folder, else 90 days ago."""
        if self.start_date:
            return self.start_date
        days = landing_dates(self.landing_dir)
        if days:
            return days[0]
        return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=90)


def home_dir() -> Path:
    return Path(os.environ.get("EVENTPULSE_HOME") or "./data").resolve()


def config_file() -> Path:
    return Path(os.environ.get("EVENTPULSE_CONFIG") or "./eventpulse.yaml").resolve()


@functools.cache
def project_settings() -> Settings:
    """The project's settings ($EVENTPULSE_CONFIG, $EVENTPULSE_HOME), loaded once, on first use:
    what the Dagster definitions are built from."""
    return load_settings()


def load_settings(config_path: Path | None = None, home: Path | None = None) -> Settings:
    """Settings from `eventpulse.yaml` (built-in defaults when the file is absent)."""
    home = (home or home_dir()).resolve()
    path = (config_path or config_file()).resolve()
    if not path.exists():
        if config_path is not None or os.environ.get("EVENTPULSE_CONFIG"):
            raise EventpulseError(
                f"Config file {path} does not exist; create it or unset EVENTPULSE_CONFIG "
                "to use the built-in defaults."
            )
        return Settings(home=home)
    try:
        raw = yaml.load(path.read_text(), Loader=_DatesAsText) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise EventpulseError(
            f"{path.name}: not valid YAML{where} ({problem}); fix the syntax."
        ) from None
    return parse_settings(raw, home=home, config_path=path)


class _DatesAsText(yaml.SafeLoader):
    """YAML without implicit dates: `start_date: 2026-13-01` stays text, so parse_settings
    names the key in one sentence instead of the YAML library raising a bare ValueError."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_settings(raw: Any, home: Path, config_path: Path | None = None) -> Settings:
    where = config_path.name if config_path else "eventpulse.yaml"
    mapping = _mapping(raw, where, "the top level")
    _no_unknown_keys(
        mapping,
        {
            "start_date",
            "conversion_event",
            "session_gap_seconds",
            "funnels",
            "retention",
            "anomalies",
            "llm",
            "aliases",
            "alerts",
            "currency",
            "timezone",
            "dimensions",
            "dimension_limit",
        },
        where,
        "the top level",
    )
    defaults = Settings(home=home)
    return Settings(
        home=home,
        config_path=config_path,
        start_date=_date(mapping.get("start_date"), where),
        conversion_event=_name(
            mapping.get("conversion_event", defaults.conversion_event), where, "conversion_event"
        ),
        session_gap_seconds=_positive_int(
            mapping.get("session_gap_seconds", defaults.session_gap_seconds),
            where,
            "session_gap_seconds",
        ),
        funnels=_funnels(mapping.get("funnels", None), where),
        retention=_retention(mapping.get("retention", None), where),
        anomalies=_anomalies(mapping.get("anomalies") or {}, where),
        llm=_llm(mapping.get("llm") or {}, where),
        aliases=_aliases(mapping.get("aliases") or {}, where),
        alerts=_alerts(mapping.get("alerts") or {}, where),
        currency=_currency(mapping.get("currency", defaults.currency), where),
        timezone=_timezone(mapping.get("timezone", defaults.timezone), where),
        dimensions=_dimensions(mapping.get("dimensions", list(defaults.dimensions)), where),
        dimension_limit=_positive_int(
            mapping.get("dimension_limit", defaults.dimension_limit), where, "dimension_limit"
        ),
    )


def _timezone(value: Any, where: str) -> str:
    """An IANA zone name as DuckDB's time zone database (ICU) spells it: the SQL that cuts days
    in the zone is what must accept it."""
    if isinstance(value, str) and value in known_timezones():
        return value
    hint = ""
    if isinstance(value, str):
        same_letters = [name for name in known_timezones() if name.lower() == value.lower()]
        close = same_letters or difflib.get_close_matches(value, known_timezones(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise EventpulseError(
        f"{where}: timezone {value!r} is not an IANA time zone{hint}; write a name such as "
        "UTC, Europe/Paris or America/Los_Angeles."
    )


@functools.cache
def known_timezones() -> frozenset[str]:
    """Zones both DuckDB (whose SQL cuts the days) and Python's zoneinfo (reports) know: this
    leaves out ambiguous legacy abbreviations such as IST or CST that only ICU accepts."""
    in_sql = duckdb.connect().execute("select name from pg_timezone_names()").fetchall()
    return frozenset(name for (name,) in in_sql) & zoneinfo.available_timezones()


def _dimensions(value: Any, where: str) -> tuple[str, ...]:
    """`dimensions`: lifted columns or `properties.<key>`, each once (CONTRACT §1)."""
    allowed = ", ".join(DIMENSION_COLUMNS)
    if not isinstance(value, list):
        raise EventpulseError(
            f"{where}: dimensions must be a list such as [platform, channel] ({allowed} or "
            "properties.<key>)."
        )
    for name in value:
        if not isinstance(name, str) or not (
            name in DIMENSION_COLUMNS
            or (
                name.startswith(PROPERTY_DIMENSION_PREFIX)
                and name[len(PROPERTY_DIMENSION_PREFIX) :].strip()
            )
        ):
            raise EventpulseError(
                f"{where}: dimensions has unknown dimension {name!r}; choose from {allowed} or "
                "properties.<key> (a key of the events' properties)."
            )
    duplicates = sorted({n for n in value if value.count(n) > 1})
    if duplicates:
        raise EventpulseError(f"{where}: dimensions lists {duplicates[0]!r} twice; keep it once.")
    if len(value) > MAX_DIMENSIONS:
        raise EventpulseError(
            f"{where}: dimensions lists {len(value)} dimensions; eventpulse breaks down by at "
            f"most {MAX_DIMENSIONS}, so keep the ones you read."
        )
    return tuple(value)


def _currency(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise EventpulseError(
            f"{where}: currency {value!r} is not a currency code; write three capital letters "
            "such as USD, EUR or GBP."
        )
    return value


def _mapping(value: Any, where: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise EventpulseError(f"{where}: {key} must be a mapping of keys to values.")
    return value


def _no_unknown_keys(mapping: dict, allowed: set[str], where: str, key: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise EventpulseError(
            f"{where}: unknown key {', '.join(repr(k) for k in unknown)} in {key}; "
            f"allowed keys are {', '.join(sorted(allowed))}."
        )


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise EventpulseError(
            f"{where}: start_date {value!r} is not a date; write it as YYYY-MM-DD."
        ) from None


def _name(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventpulseError(f"{where}: {key} must be a non-empty event name, got {value!r}.")
    return value


def _positive_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise EventpulseError(f"{where}: {key} must be a positive whole number, got {value!r}.")
    return value


def _funnels(value: Any, where: str) -> tuple[Funnel, ...]:
    if value is None:
        return DEFAULT_FUNNELS
    if not isinstance(value, list):
        raise EventpulseError(f"{where}: funnels must be a list of funnels (name, steps, ...).")
    funnels = []
    for position, item in enumerate(value, start=1):
        key = f"funnels[{position}]"
        item = _mapping(item, where, key)
        _no_unknown_keys(
            item,
            {"name", "steps", "window_seconds", "window_days", "order", "exclusions"},
            where,
            key,
        )
        name = _name(item.get("name"), where, f"{key}.name")
        steps = item.get("steps")
        if not isinstance(steps, list):
            raise EventpulseError(
                f'{where}: funnel "{name}" steps must be a list of event names or '
                "{event: ..., where: {...}} steps."
            )
        parsed = [_step(step, where, name, n) for n, step in enumerate(steps, start=1)]
        if len(steps) < 2:
            raise EventpulseError(
                f'{where}: funnel "{name}" has {len(steps)} step; a funnel needs at least 2.'
            )
        if "window_seconds" in item and "window_days" in item:
            raise EventpulseError(
                f'{where}: funnel "{name}" sets both window_seconds and window_days; keep one.'
            )
        window = DEFAULT_FUNNEL_WINDOW_SECONDS
        if "window_seconds" in item:
            window = _positive_int(item["window_seconds"], where, f'funnel "{name}" window_seconds')
        if "window_days" in item:
            window = 86400 * _positive_int(
                item["window_days"], where, f'funnel "{name}" window_days'
            )
        order = item.get("order", "ordered")
        if order not in FUNNEL_ORDERS:
            raise EventpulseError(
                f'{where}: funnel "{name}" order {order!r} is not one of {", ".join(FUNNEL_ORDERS)}.'
            )
        filters = tuple(f for _, f in parsed)
        funnel = Funnel(
            name=name,
            steps=tuple(event for event, _ in parsed),
            window_seconds=window,
            order=order,
            where=filters if any(filters) else (),
            exclusions=_exclusions(item.get("exclusions"), where, name, len(steps), order),
        )
        if order == "unordered":
            _unordered_steps_do_not_overlap(funnel, where)
        funnels.append(funnel)
    names = [f.name for f in funnels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EventpulseError(f"{where}: funnel name {duplicates[0]!r} is used twice; rename one.")
    return tuple(funnels)


def _step(value: Any, where: str, funnel: str, position: int) -> tuple[str, StepFilter]:
    """A step: an event name, or {event: name, where: {key: value or [values]}}."""
    label = f'{where}: funnel "{funnel}" step {position}'
    if isinstance(value, str) and value.strip():
        return value, ()
    if not isinstance(value, dict):
        raise EventpulseError(
            f"{label} must be an event name or {{event: ..., where: {{key: value}}}}, "
            f"got {value!r}."
        )
    _no_unknown_keys(value, {"event", "where"}, where, f'funnel "{funnel}" step {position}')
    event = _name(value.get("event"), where, f'funnel "{funnel}" step {position} event')
    filters = value.get("where")
    if filters is None:
        return event, ()
    if not isinstance(filters, dict) or not filters:
        raise EventpulseError(
            f"{label} where must be a mapping of property keys to values, e.g. {{path: /pricing}}."
        )
    parsed = []
    for key, values in filters.items():
        if not isinstance(key, str) or not key.strip():
            raise EventpulseError(f"{label} where has the key {key!r}; a key is non-empty text.")
        values = values if isinstance(values, list) else [values]
        if not values or not all(_is_scalar(v) for v in values):
            raise EventpulseError(
                f"{label} where.{key} must be a value (text, a number or true/false) or a "
                "non-empty list of them."
            )
        # Compared as text (CONTRACT §3): each value as JSON would write it, so that 3 matches
        # both 3 and "3" in the records, and true matches true.
        parsed.append((key, tuple(dict.fromkeys(_as_text(v) for v in values))))
    return event, tuple(parsed)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | dt.date) and value == value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _exclusions(
    value: Any, where: str, funnel: str, n_steps: int, order: str
) -> tuple[Exclusion, ...]:
    if value is None:
        return ()
    label = f'{where}: funnel "{funnel}" exclusions'
    if order == "unordered":
        raise EventpulseError(
            f"{label} are not allowed in an unordered funnel (its steps have no between); "
            "remove them or make the funnel ordered or strict."
        )
    if not isinstance(value, list):
        raise EventpulseError(
            f"{label} must be a list of {{event: ..., from_step: N, to_step: M}} entries."
        )
    exclusions = []
    for position, item in enumerate(value, start=1):
        item = _mapping(item, where, f'funnel "{funnel}" exclusions[{position}]')
        _no_unknown_keys(
            item, {"event", "from_step", "to_step"}, where, f'funnel "{funnel}" exclusions'
        )
        event = _name(item.get("event"), where, f'funnel "{funnel}" exclusions[{position}].event')
        from_step = item.get("from_step", 1)
        to_step = item.get("to_step", n_steps)
        for step in (from_step, to_step):
            if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= n_steps:
                raise EventpulseError(
                    f"{label}[{position}] step {step!r} is not a step of the funnel; "
                    f"steps are numbered 1 to {n_steps}."
                )
        if from_step >= to_step:
            raise EventpulseError(
                f"{label}[{position}] from_step {from_step} must come before to_step {to_step}."
            )
        exclusions.append(Exclusion(event, from_step, to_step))
    return tuple(exclusions)


def _unordered_steps_do_not_overlap(funnel: Funnel, where: str) -> None:
    """Unordered steps of one event must have the same `where` or exclusive ones: steps whose
    events only partly overlap would make 'steps filled by distinct events' a matching problem
    with no obvious answer (README: funnels)."""
    steps = list(zip(funnel.steps, funnel.filters, strict=True))
    for i, (event, mine) in enumerate(steps):
        for other_event, other in steps[i + 1 :]:
            if event != other_event or mine == other or _exclusive(mine, other):
                continue
            raise EventpulseError(
                f'{where}: unordered funnel "{funnel.name}" has steps '
                f"{step_name(event, mine)} and {step_name(event, other)}, which one event can "
                "both match; give them the same where or make them exclusive (one key with no "
                "value in common)."
            )


def _exclusive(a: StepFilter, b: StepFilter) -> bool:
    """No event can match both filters: some key is in both with no value in common."""
    values = dict(a)
    return any(key in values and not set(values[key]) & set(other) for key, other in b)


def _retention(value: Any, where: str) -> tuple[RetentionDefinition, ...]:
    if value is None:
        return DEFAULT_RETENTION
    if not isinstance(value, list) or not value:
        raise EventpulseError(
            f"{where}: retention must be a non-empty list of definitions, e.g. [{{name: any}}]."
        )
    definitions = []
    for position, item in enumerate(value, start=1):
        key = f"retention[{position}]"
        item = _mapping(item, where, key)
        _no_unknown_keys(item, {"name", "start_event", "return_event"}, where, key)
        name = _name(item.get("name"), where, f"{key}.name")
        events = {}
        for field_name in ("start_event", "return_event"):
            if item.get(field_name) is not None:
                events[field_name] = _name(item[field_name], where, f"{key}.{field_name}")
        definitions.append(RetentionDefinition(name, **events))
    names = [d.name for d in definitions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EventpulseError(
            f"{where}: retention definition name {duplicates[0]!r} is used twice; rename one."
        )
    return tuple(definitions)


def _anomalies(value: Any, where: str) -> AnomalySettings:
    mapping = _mapping(value, where, "anomalies")
    _no_unknown_keys(
        mapping, {"contamination", "min_history_days", "metrics", "directions"}, where, "anomalies"
    )
    defaults = AnomalySettings()
    contamination = mapping.get("contamination", defaults.contamination)
    if contamination != "auto" and not (
        isinstance(contamination, int | float)
        and not isinstance(contamination, bool)
        and 0 < contamination <= 0.5
    ):
        raise EventpulseError(
            f"{where}: anomalies.contamination must be 'auto' or a number in (0, 0.5], "
            f"got {contamination!r}."
        )
    metrics = mapping.get("metrics", list(defaults.metrics))
    if not isinstance(metrics, list) or not metrics:
        raise EventpulseError(f"{where}: anomalies.metrics must be a non-empty list of metrics.")
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise EventpulseError(
            f"{where}: anomalies.metrics has unknown metric {unknown[0]!r}; "
            f"choose from {', '.join(METRIC_NAMES)}."
        )
    directions = mapping.get("directions", defaults.directions)
    if directions not in ANOMALY_DIRECTIONS:
        raise EventpulseError(
            f"{where}: anomalies.directions must be one of {', '.join(ANOMALY_DIRECTIONS)}, "
            f"got {directions!r}."
        )
    return AnomalySettings(
        contamination=contamination,
        min_history_days=_positive_int(
            mapping.get("min_history_days", defaults.min_history_days),
            where,
            "anomalies.min_history_days",
        ),
        metrics=tuple(metrics),
        directions=directions,
    )


def _llm(value: Any, where: str) -> LlmSettings:
    mapping = _mapping(value, where, "llm")
    _no_unknown_keys(mapping, {"base_url", "model", "api_key_env"}, where, "llm")
    for key in ("base_url", "model", "api_key_env"):
        if mapping.get(key) is not None and not isinstance(mapping[key], str):
            raise EventpulseError(f"{where}: llm.{key} must be a string or null.")
    settings = LlmSettings(**{k: mapping.get(k) for k in ("base_url", "model", "api_key_env")})
    if bool(settings.base_url) != bool(settings.model):
        raise EventpulseError(f"{where}: llm needs both base_url and model (or neither).")
    return settings


def _alerts(value: Any, where: str) -> AlertSettings:
    """`alerts: {webhook_url}`; the URL is a secret, so no message repeats it."""
    mapping = _mapping(value, where, "alerts")
    _no_unknown_keys(mapping, {"webhook_url"}, where, "alerts")
    url = mapping.get("webhook_url")
    if url is None:
        return AlertSettings()
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EventpulseError(
            f"{where}: alerts.webhook_url must be an http:// or https:// URL with a host "
            "(an incoming-webhook URL), or null."
        )
    return AlertSettings(webhook_url=url)


def _aliases(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    mapping = _mapping(value, where, "aliases")
    aliases = {}
    for key, names in mapping.items():
        if key not in ALIAS_FIELDS:
            raise EventpulseError(
                f"{where}: aliases has unknown field {key!r}; choose from {', '.join(ALIAS_FIELDS)}."
            )
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names:
            raise EventpulseError(
                f"{where}: aliases.{key} must be a list of source names, e.g. [event_date]."
            )
        for name in names:
            if not isinstance(name, str) or not all(part.strip() for part in name.split(".")):
                raise EventpulseError(
                    f"{where}: aliases.{key} has {name!r}; a source name is a key or a dotted "
                    "path of keys (context.device.type), with no empty part."
                )
            if key == "properties" and name.startswith("properties."):
                raise EventpulseError(
                    f"{where}: aliases.properties {name!r} points into the properties; name the "
                    "object that holds them instead."
                )
        aliases[key] = tuple(names)
    return aliases
