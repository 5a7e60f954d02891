"""How far every partition's windows are stored: the consumer group's committed watermarks.

Each worker commits a partition's offset only after the flush covering it is stored, with the
partition's watermark in the commit metadata
(:class:`~stream_app.worker.partitions.CommitMetadata`): every window ending at or before that
watermark is complete in ClickHouse. The fleet-wide rules
(:class:`~stream_app.alerting.placement.FleetRuleRunner`) wait for the smallest of them, so a
partition changing hands or lagging does not make a fleet window look complete too early.
Partitions never committed (no traffic yet) do not count. Idle partitions keep committing their
wall-clock-advanced watermark, so a silent pool does not hold the fleet rules back.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]

from stream_app.worker.errors import BrokerUnavailable
from stream_app.worker.partitions import CommitMetadata

__all__ = ["GroupWatermarks"]

logger = logging.getLogger(__name__)


class GroupWatermarks:
    """Reads the smallest committed watermark of ``topic`` in consumer group ``group``."""

    def __init__(
        self, bootstrap_servers: str, group: str, topic: str, *, client_id: str, timeout_s: float
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._group = group
        self._topic = topic
        self._client_id = client_id
        self._timeout_ms = int(timeout_s * 1000)
        self._admin: AIOKafkaAdminClient | None = None

    async def closed_through_ms(self) -> int | None:
        """The smallest committed watermark (None: nothing committed yet). Raises
        :class:`~stream_app.worker.errors.BrokerUnavailable` (retriable) when Kafka does not
        answer."""
        try:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    request_timeout_ms=self._timeout_ms,
                )
                await admin.start()
                self._admin = admin
            offsets = await self._admin.list_consumer_group_offsets(self._group)
        except KafkaError as exc:
            await self.close()
            raise BrokerUnavailable(f"committed watermarks of {self._group}: {exc!r}") from exc
        marks = []
        for tp, committed in offsets.items():
            if tp.topic != self._topic or committed.offset < 0:
                continue
            metadata = CommitMetadata.decode(committed.metadata)
            if metadata is not None and metadata.watermark.watermark_ms is not None:
                marks.append(metadata.watermark.watermark_ms)
        return min(marks) if marks else None

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except KafkaError as exc:
                logger.debug("closing the admin client: %r", exc)
