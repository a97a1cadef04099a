"""eventpulse.yaml is validated in one place; every problem names the key and the fix."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import EventpulseError
from pipelines.settings import DEFAULT_FUNNELS, load_settings


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "eventpulse.yaml"
    path.write_text(text)
    return path


def test_defaults_when_no_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EVENTPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(home=tmp_path)
    assert settings.conversion_event == "purchase"
    assert settings.session_gap_seconds == 1800
    assert settings.funnels == DEFAULT_FUNNELS
    assert settings.funnels[0].window_seconds == 7 * 86400


def test_a_full_config_is_read(tmp_path):
    path = write_config(
        tmp_path,
        """
start_date: 2026-01-05
conversion_event: order_completed
session_gap_seconds: 600
funnels:
  - name: onboarding
    steps: [app_open, signup]
    window_days: 2
    order: strict
  - name: buy
    steps: [view, cart, order_completed]
    window_seconds: 3600
anomalies: {contamination: 0.05, min_history_days: 21, metrics: [revenue], directions: dip}
llm: {base_url: "http://localhost:11434/v1", model: llama3, api_key_env: MY_KEY}
""",
    )
    settings = load_settings(config_path=path, home=tmp_path)
    assert settings.start_date == dt.date(2026, 1, 5)
    assert settings.conversion_event == "order_completed"
    assert [(f.name, f.window_seconds, f.order) for f in settings.funnels] == [
        ("onboarding", 2 * 86400, "strict"),
        ("buy", 3600, "ordered"),
    ]
    assert settings.anomalies.metrics == ("revenue",)
    assert settings.llm.configured and settings.llm.api_key_env == "MY_KEY"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conversion_evnt: purchase", "unknown key 'conversion_evnt'"),
        ("funnels: [{name: f, steps: [a]}]", 'funnel "f" has 1 step; a funnel needs at least 2'),
        ("funnels: [{name: f, steps: [a, b], order: random}]", "order 'random' is not one of"),
        ("funnels: [{name: f, steps: [a, b], window_days: 1, window_seconds: 5}]", "keep one"),
        ("funnels: [{name: f, steps: [a, b], windw: 1}]", "unknown key 'windw' in funnels[1]"),
        ("session_gap_seconds: -5", "session_gap_seconds must be a positive whole number"),
        ("start_date: yesterday", "start_date 'yesterday' is not a date"),
        ("anomalies: {metrics: [bounce_rate]}", "unknown metric 'bounce_rate'"),
        ("anomalies: {contamination: 2}", "anomalies.contamination must be 'auto' or a number"),
        ("llm: {base_url: http://x}", "llm needs both base_url and model"),
        ("[1, 2", "not valid YAML"),
        ("- a list", "the top level must be a mapping"),
    ],
)
def test_bad_config_is_one_sentence_naming_the_key(tmp_path, text, message):
    path = write_config(tmp_path, text)
    with pytest.raises(EventpulseError) as error:
        load_settings(config_path=path, home=tmp_path)
    assert message in str(error.value)
    assert "\n" not in str(error.value).strip()


def test_a_named_config_file_that_is_missing_is_an_error(tmp_path):
    with pytest.raises(EventpulseError, match="does not exist"):
        load_settings(config_path=tmp_path / "nope.yaml", home=tmp_path)


def test_partition_start_defaults_to_the_earliest_landing_folder(tmp_path):
    for day in ("2026-02-03", "2026-02-01", "not-a-date"):
        (tmp_path / "landing" / "events" / f"date={day}").mkdir(parents=True)
    settings = load_settings(config_path=write_config(tmp_path, "{}"), home=tmp_path)
    assert settings.partition_start() == dt.date(2026, 2, 1)
    empty = load_settings(config_path=write_config(tmp_path, "{}"), home=tmp_path / "empty")
    assert empty.partition_start(today=dt.date(2026, 5, 1)) == dt.date(2026, 1, 31)


def test_modules_import_without_reading_settings(tmp_path: Path) -> None:
    """Settings are read on first use, not at import: with a config path that does not exist
    (an error once read), the core modules, the partitions module and the stages' cores still
    import, and the settings then fail with the one-sentence error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPULSE_")}
    env["EVENTPULSE_CONFIG"] = str(tmp_path / "missing.yaml")
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    code = (
        "import pipelines.settings, pipelines.partitions, pipelines.landing, pipelines.warehouse\n"
        "import assets.ingest.load, assets.marts.metrics, assets.marts.funnels\n"
        "from pipelines.errors import EventpulseError\n"
        "try:\n"
        "    pipelines.settings.project_settings()\n"
        "except EventpulseError as exc:\n"
        "    print('error:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "missing.yaml does not exist" in result.stdout
