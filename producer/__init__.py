"""The library fleet hosts install: emit one event per proxied request, cheaply.

>>> settings = ProducerSettings(source_host="host-1", fleet_key="...secret...")
>>> producer = MetricsProducer(settings, InProcessTransport(deliver))
>>> producer.emit(pool="poolA", region="eu", proxy_id=producer.proxy_id("10.1.2.3:8080"),
...               outcome=Outcome.SUCCESS, latency_ms=123.4, status_code=200)
True

The Kafka transport lives in :mod:`producer.kafka` (imported on demand, it needs aiokafka).
Errors are listed in :mod:`producer.errors`.
"""

from __future__ import annotations

from producer.errors import (
    InvalidEvent,
    PrivacyViolation,
    ProducerError,
    SpoolError,
    TransportError,
    TransportRejected,
    TransportUnavailable,
)
from producer.producer import MetricsProducer
from producer.settings import ProducerSettings
from producer.stats import ProducerStats
from producer.transport import InProcessTransport, Transport
from schemas.events import Outcome

__all__ = [
    "InProcessTransport",
    "InvalidEvent",
    "MetricsProducer",
    "Outcome",
    "PrivacyViolation",
    "ProducerError",
    "ProducerSettings",
    "ProducerStats",
    "SpoolError",
    "Transport",
    "TransportError",
    "TransportRejected",
    "TransportUnavailable",
]
