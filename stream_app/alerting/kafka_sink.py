"""Publish alert events on the ``<prefix>.alerts`` Kafka topic (the primary delivery path).

Record key = the alert's fingerprint (all states of one alert land on one partition, in order),
value = the AlertEvent JSON (``schemas/jsonschema/alert_event.v1.json``), acks from all in-sync
replicas with an idempotent producer. The producer connects lazily: a broker that is down when the
service starts is a retriable delivery failure, not a start-up failure. The topic is created when
missing (``create_partitions``, default 3; ``None`` leaves topic management to the deployment).
"""

from __future__ import annotations

import logging

import orjson
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from schemas.alerts import AlertEvent
from stream_app.alerting.dispatcher import Accepts, Deliverable, only_events
from stream_app.alerting.errors import DeliveryRejected, DeliveryUnavailable
from stream_app.alerting.kafka_topics import ensure_topic

logger = logging.getLogger(__name__)

_POISON = (MessageSizeTooLargeError, RecordTooLargeError)


def alerts_topic(prefix: str) -> str:
    """The alerts topic of a deployment: ``<prefix>.alerts``."""
    return f"{prefix}.alerts"


def encode_alert(event: AlertEvent) -> tuple[bytes, bytes]:
    """(key, value) of the Kafka record for ``event``."""
    return event.fingerprint.encode(), orjson.dumps(event.model_dump(mode="json"))


class KafkaAlertSink:
    """Sends each alert event as one record and waits for the broker's acknowledgement."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str,
        *,
        name: str = "kafka",
        client_id: str = "proxywhirl-metrics-alerts",
        request_timeout_ms: int = 10_000,
        create_partitions: int | None = 3,
        replication_factor: int = 1,
    ) -> None:
        self._name = name
        self._bootstrap_servers = bootstrap_servers
        self.topic = alerts_topic(topic_prefix)
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._create_partitions = create_partitions
        self._replication_factor = replication_factor

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return "events"

    async def start(self) -> None:
        try:
            await self._connect()
        except DeliveryUnavailable as exc:
            logger.warning("alerts topic %s not reachable yet, will retry: %s", self.topic, exc)

    async def deliver(self, item: Deliverable) -> None:
        event = only_events(item, self._name)
        producer = await self._connect()
        key, value = encode_alert(event)
        try:
            await producer.send_and_wait(self.topic, value=value, key=key)
        except _POISON as exc:
            raise DeliveryRejected(f"{self.topic}: {type(exc).__name__}") from exc
        except TopicAuthorizationFailedError as exc:
            raise DeliveryUnavailable(f"{self.topic}: not authorised") from exc
        except KafkaError as exc:
            raise DeliveryUnavailable(f"{self.topic}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except KafkaError as exc:
                logger.warning("closing the alerts producer failed: %s", exc)

    async def _connect(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self._create_partitions is not None:
            await ensure_topic(
                self._bootstrap_servers,
                self.topic,
                partitions=self._create_partitions,
                replication_factor=self._replication_factor,
                client_id=self._client_id,
            )
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            try:
                await producer.stop()
            except KafkaError:
                logger.debug("stopping a producer that failed to start also failed")
            raise DeliveryUnavailable(f"{self.topic}: {type(exc).__name__}: {exc}") from exc
        self._producer = producer
        return producer
