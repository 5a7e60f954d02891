"""Leader election through a Kafka consumer group (for fleet-wide rules outside Faust).

Every candidate joins the consumer group ``<prefix>.alerting-leader`` on the one-partition topic
of the same name; the broker's group coordinator assigns that partition to exactly one member,
and that member is the leader. Leadership is dropped in ``on_partitions_revoked``, which
aiokafka runs before a rebalance completes, so two members never both believe they lead (beyond
a session timeout of a member that stopped heartbeating, during which it also stopped
evaluating). This is the mechanism Faust's own leader election uses; in a Faust worker use
``@app.timer(..., on_leader=True)`` instead and call ``FleetRuleRunner.evaluate_due`` from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaConsumer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]

from stream_app.alerting.errors import SinkUnavailable
from stream_app.alerting.kafka_topics import ensure_topic

logger = logging.getLogger(__name__)


def leader_topic(prefix: str) -> str:
    return f"{prefix}.alerting-leader"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaLeader) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._owner._set_leader(False)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner.assignments += 1
        self._owner._set_leader(any(tp.partition == 0 for tp in assigned))


class KafkaLeader:
    """``is_leader()`` is True on exactly one of the processes sharing ``prefix``."""

    def __init__(
        self,
        bootstrap_servers: str,
        prefix: str,
        *,
        client_id: str = "proxywhirl-metrics-leader",
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = leader_topic(prefix)
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._poller: asyncio.Task[None] | None = None
        self._leader = False
        self.changed = asyncio.Event()
        self.transitions = 0
        self.assignments = 0
        """Completed group rebalances this member took part in."""

    def is_leader(self) -> bool:
        return self._leader

    def _set_leader(self, leader: bool) -> None:
        if leader != self._leader:
            self._leader = leader
            self.transitions += 1
            logger.info("alerting leadership %s (%s)", "acquired" if leader else "lost", self.topic)
        self.changed.set()

    async def start(self) -> None:
        """Join the election (creates the topic if missing); SinkUnavailable if Kafka is down."""
        await ensure_topic(self._bootstrap, self.topic, partitions=1, client_id=self._client_id)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.topic,
            client_id=self._client_id,
            enable_auto_commit=False,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            # How long the broker waits for members to rejoin in a rebalance (default: the
            # 5-minute poll interval). Members rejoin at once, and a stop() that falls into a
            # rebalance waits for it to finish: keep it short.
            rebalance_timeout_ms=self._session_timeout_ms,
        )
        consumer.subscribe([self.topic], listener=_Listener(self))
        try:
            await consumer.start()
        except KafkaError as exc:
            raise SinkUnavailable(f"{self.topic}: {type(exc).__name__}: {exc}") from exc
        self._consumer = consumer
        self._poller = asyncio.create_task(self._poll(), name="alerting-leader-poll")

    async def _poll(self) -> None:
        assert self._consumer is not None
        while True:
            # Nothing is ever produced to the topic: polling keeps group membership alive.
            try:
                await self._consumer.getmany(timeout_ms=500)
            except KafkaError as exc:
                logger.warning("alerting leader election: %s", exc)
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        """Leave the group (another candidate takes over at once)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self._set_leader(False)
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(KafkaError):
                await consumer.stop()
