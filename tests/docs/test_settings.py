"""The configuration reference is generated from config.SETTINGS: every setting is described."""

from __future__ import annotations

import sys
from pathlib import Path

from waterdrop import config
from waterdrop.producer import Producer

ROOT = Path(__file__).resolve().parents[2]

#: settings that are not quantities carry no unit; every quantity must say what it counts
_QUANTITIES = (int, float, tuple)


def test_every_root_setting_has_a_definition():
    names = [s.name for s in config.SETTINGS]
    assert len(names) == len(set(names))
    assert set(names) == set(config.DEFAULTS)
    for setting in config.SETTINGS:
        assert setting.meaning.strip(), setting.name
        assert config.DEFAULTS[setting.name] == setting.default
        if isinstance(setting.default, _QUANTITIES) and not isinstance(setting.default, bool):
            assert setting.unit.strip(), f"{setting.name} is a quantity without a unit"
        if setting.default is None:
            assert setting.shown_default.strip(), f"{setting.name}: say what the default becomes"


def test_every_injected_librdkafka_default_has_a_definition():
    assert {s.name: s.default for s in config.KAFKA_SETTINGS} == config.KAFKA_DEFAULTS
    for setting in config.KAFKA_SETTINGS:
        assert setting.meaning.strip(), setting.name
        if setting.name.endswith(".ms"):
            assert setting.unit == "ms", setting.name


def test_timeouts_are_in_milliseconds():
    for setting in config.SETTINGS:
        if "timeout" in setting.name or "backoff" in setting.name:
            assert setting.unit == "ms", setting.name


def test_a_producer_gets_the_documented_defaults():
    producer = Producer(kafka={"bootstrap.servers": "127.0.0.1:1"})  # configured, never used
    try:
        for setting in config.SETTINGS:
            value = getattr(producer.config, setting.name)
            if setting.default is None:
                assert value is not None, setting.name  # resolved at setup
            elif setting.name == "kafka":
                continue
            else:
                expected = setting.default
                if isinstance(expected, tuple):
                    expected = list(expected)
                assert value == expected, setting.name
        for name, default in config.KAFKA_DEFAULTS.items():
            assert producer.config.kafka[name] == default
    finally:
        producer.close()


def test_the_generated_reference_lists_every_setting():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.pop(0)
    table = hooks.settings_table()
    for setting in config.SETTINGS:
        assert f"| `{setting.name}` |" in table
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "<!-- generated: settings -->" in page
    assert "<!-- generated: kafka-defaults -->" in page
    rendered = hooks.on_page_markdown(page, None, None, None)
    assert "`max_wait_timeout` | `180_000` | ms |" in rendered
