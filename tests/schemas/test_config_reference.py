"""docs/configuration.md is generated from the settings classes and must not drift."""

from __future__ import annotations

from stream_app import config_reference


def test_configuration_reference_is_up_to_date() -> None:
    committed = config_reference.OUTPUT.read_text(encoding="utf-8")
    assert committed == config_reference.render(), (
        "docs/configuration.md is stale: run `python -m stream_app.config_reference`"
    )


def test_every_settings_class_is_documented_with_its_variables() -> None:
    text = config_reference.render()
    for title, _module, name, _what in config_reference.SETTINGS:
        assert f"## {title}" in text
        assert f".{name}`" in text
    assert "`PWM_STORAGE_DSN`" in text
    assert "`PWM_PIPELINE__WINDOW_S`" in text
    assert "`PWM_PRODUCER_FLEET_KEY`" in text
    assert "demo-fleet-key" not in text, "secret defaults must not be printed"
