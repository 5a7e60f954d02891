"""The topics of a deployment and ``topics create``: partitions and retention from the settings.

=============================  ==========================  ====================================
topic                          partitions                  holds
=============================  ==========================  ====================================
``<prefix>.requests``          ``requests_partitions``     batch envelopes / events, key = pool
``<prefix>.requests.dlq``      ``dlq_partitions``          malformed and late records + reason
``<prefix>.windows``           ``windows_partitions``      closed window aggregates, key = pool
``<prefix>.alerts``            ``alerts_partitions``       alert events (stream_app.alerting)
=============================  ==========================  ====================================

An existing topic is left as it is (its partition count is reported when it differs from the
settings): adding partitions to ``<prefix>.requests`` moves pools to other partitions, see
docs/operations.md before doing it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka.admin import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaAdminClient,
    NewTopic,
)
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from stream_app.worker.errors import BrokerUnavailable, WorkerFatal
from stream_app.worker.kafka_errors import is_retriable
from stream_app.worker.settings import WorkerSettings

__all__ = ["TopicSpec", "create_topics", "topic_specs"]

logger = logging.getLogger(__name__)

_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic to create."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: WorkerSettings) -> list[TopicSpec]:
    """The deployment's topics, configured from ``settings.topics``."""
    t = settings.topics

    def config(retention_hours: int) -> dict[str, str]:
        values = {"retention.ms": str(retention_hours * _HOUR_MS), "cleanup.policy": "delete"}
        if t.min_insync_replicas is not None:
            values["min.insync.replicas"] = str(t.min_insync_replicas)
        return values

    rf = t.replication_factor
    requests = config(t.requests_retention_hours)
    # The broker stamps each record as it appends it: the record time that bounds its events'
    # times comes from a clock no fleet host controls (stream_app/core/record_time.py).
    requests["message.timestamp.type"] = "LogAppendTime"
    return [
        TopicSpec(settings.requests_topic, t.requests_partitions, rf, requests),
        TopicSpec(settings.dlq_topic, t.dlq_partitions, rf, config(t.dlq_retention_hours)),
        TopicSpec(
            settings.windows_topic, t.windows_partitions, rf, config(t.windows_retention_hours)
        ),
        TopicSpec(settings.alerts_topic, t.alerts_partitions, rf, config(t.alerts_retention_hours)),
    ]


async def create_topics(settings: WorkerSettings, *, timeout_s: float = 30.0) -> dict[str, str]:
    """Create the missing topics; returns ``{topic: outcome}`` (``created``, ``exists``, or
    ``exists with N partitions (settings: M)``).

    Raises :class:`BrokerUnavailable` when Kafka cannot be reached, :class:`WorkerFatal` when
    it refuses (not authorised, invalid configuration).
    """
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await admin.start()
        response = await admin.create_topics(
            [
                NewTopic(
                    name=s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    topic_configs=s.config,
                )
                for s in specs
            ],
            timeout_ms=int(timeout_s * 1000),
        )
        outcomes: dict[str, str] = {}
        existing: list[str] = []
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            error = for_code(code)
            if code == 0:
                outcomes[name] = "created"
            elif error is TopicAlreadyExistsError:
                existing.append(name)
            else:
                detail = entry[2] if len(entry) > 2 else ""
                raise WorkerFatal(f"cannot create topic {name}: {error.__name__} {detail}")
        if existing:
            wanted = {s.name: s.partitions for s in specs}
            for described in await admin.describe_topics(existing):
                name = described["topic"]
                have = len(described["partitions"])
                outcomes[name] = (
                    "exists"
                    if have == wanted[name]
                    else f"exists with {have} partitions (settings: {wanted[name]})"
                )
    except KafkaError as exc:
        if is_retriable(exc):
            raise BrokerUnavailable(f"topics create: {exc!r}") from exc
        raise WorkerFatal(f"topics create: {exc!r}") from exc
    except OSError as exc:
        raise BrokerUnavailable(f"topics create: {exc!r}") from exc
    finally:
        try:
            await admin.close()
        except KafkaError as exc:
            logger.debug("closing the admin client failed: %r", exc)
    for name, outcome in outcomes.items():
        logger.info("topic %s: %s", name, outcome)
    return outcomes
