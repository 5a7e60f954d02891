"""Create the alerting topics when they are missing (brokers often disable auto-creation)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaAdminClient,
    NewTopic,
)
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    TopicAlreadyExistsError,
)

from stream_app.alerting.errors import DeliveryUnavailable


async def ensure_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    partitions: int,
    replication_factor: int = 1,
    client_id: str = "proxywhirl-metrics-alerts",
) -> None:
    """Create ``topic`` unless it exists; DeliveryUnavailable when Kafka cannot be reached."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    try:
        await admin.start()
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)]
            )
    except KafkaError as exc:
        raise DeliveryUnavailable(f"{topic}: {type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(KafkaError):
            await admin.close()
