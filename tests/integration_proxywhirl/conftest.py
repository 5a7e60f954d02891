"""Fixtures of the ProxyWhirl integration tests: the loopback lab, a capturing producer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger as loguru_logger

from producer import InProcessTransport, MetricsProducer, ProducerSettings
from tests.integration_proxywhirl.helpers import FLEET_KEY, SOURCE_HOST, Capture
from tests.support.proxies import ProxyLab


@pytest.fixture(scope="module")
def lab() -> Iterator[ProxyLab]:
    with ProxyLab(slow_delay_ms=150) as running:
        yield running


@pytest.fixture(autouse=True, scope="module")
def _quiet_proxywhirl() -> Iterator[None]:
    """ProxyWhirl logs several loguru lines per request; the tests do not read them."""
    loguru_logger.disable("proxywhirl")
    yield
    loguru_logger.enable("proxywhirl")


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def producer(capture: Capture) -> Iterator[MetricsProducer]:
    settings = ProducerSettings(
        source_host=SOURCE_HOST,
        fleet_key=FLEET_KEY,
        close_at_exit=False,
        batch_max_age_ms=20,
    )
    metrics_producer = MetricsProducer(settings, InProcessTransport(capture.deliver))
    yield metrics_producer
    metrics_producer.close(timeout_s=5.0)
