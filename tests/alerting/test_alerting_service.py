"""AlertingSettings (environment, validation) and the dispatcher built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.service import build_dispatcher, build_sinks
from stream_app.alerting.settings import AlertingSettings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PWM_ALERTING_RULES_FILE", str(tmp_path / "rules.yaml"))
    monkeypatch.setenv("PWM_ALERTING_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    monkeypatch.setenv("PWM_ALERTING_TOPIC_PREFIX", "fleet1")
    monkeypatch.setenv(
        "PWM_ALERTING_ALERTMANAGER_URLS", '["http://127.0.0.1:9093","http://127.0.0.1:9094"]'
    )
    monkeypatch.setenv("PWM_ALERTING_WEBHOOK_URL", "https://hooks.example/T/B/secret")
    monkeypatch.setenv("PWM_ALERTING_WEBHOOK_FORMAT", "slack")
    monkeypatch.setenv("PWM_ALERTING_DATA_DIR", str(tmp_path))
    settings = AlertingSettings()
    assert settings.rules_file == tmp_path / "rules.yaml"
    assert settings.dead_letter_path == tmp_path / "alerts-dead-letter.jsonl"
    assert "secret" not in repr(settings)  # the webhook URL is a secret
    sinks = build_sinks(settings, AlertingMetrics(None))
    assert [s.name for s in sinks] == ["kafka", "alertmanager", "alertmanager-2", "webhook"]
    assert [s.accepts for s in sinks] == ["events", "events", "events", "notifications"]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="topic_prefix"):
        AlertingSettings(topic_prefix="bad prefix!")
    with pytest.raises(ValidationError, match="rules_poll_interval_s"):
        AlertingSettings(rules_poll_interval_s=5)
    with pytest.raises(ValidationError, match="alertmanager_urls"):
        AlertingSettings(alertmanager_urls=["not a url"])


def test_history_sink_needs_a_database(tmp_path: Path) -> None:
    settings = AlertingSettings(data_dir=tmp_path)
    metrics = AlertingMetrics(None)
    assert build_sinks(settings, metrics) == []  # no storage given: no history sink
    dispatcher = build_dispatcher(settings, metrics)
    assert dispatcher.sink_names == []
