"""Marks tests by the services they use, so ``-m "not kafka"`` deselects them."""

from __future__ import annotations

import pytest

KAFKA_FIXTURES = frozenset(
    {"kafka_broker", "kafka_bootstrap", "kafka_outage_broker", "kafka_topic_factory"}
)
ALERTMANAGER_FIXTURES = frozenset({"alertmanager_factory"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if names & ALERTMANAGER_FIXTURES:
            item.add_marker(pytest.mark.alertmanager)
