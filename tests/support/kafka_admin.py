"""Kafka admin helpers for tests: is the cluster up, create a topic and wait until it is usable.

A topic is "ready" when the metadata lists it with the requested number of partitions and every
partition has a leader: producers and consumers can use it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaClient  # type: ignore[import-untyped, unused-ignore]
from aiokafka.admin import (  # type: ignore[import-untyped, unused-ignore]
    AIOKafkaAdminClient,
    NewTopic,
)
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from .errors import HarnessError

logger = logging.getLogger(__name__)

_POLL_S = 0.05


class TopicError(HarnessError):
    """A topic could not be created, or did not become ready in time."""


async def cluster_ready(bootstrap: str, *, timeout_s: float = 3.0) -> bool:
    """Whether the cluster answers a metadata request listing a broker and a controller."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="pwm-test-probe",
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()
    return bool(metadata.brokers()) and metadata.controller is not None


def _topic_ready(described: list[dict[str, Any]], name: str, partitions: int) -> bool:
    for topic in described:
        if topic["topic"] != name or topic["error_code"] != 0:
            continue
        parts = topic["partitions"]
        return len(parts) == partitions and all(
            p["error_code"] == 0 and p["leader"] >= 0 for p in parts
        )
    return False


async def wait_topic_ready(
    admin: AIOKafkaAdminClient, name: str, partitions: int, *, timeout_s: float = 30.0
) -> None:
    """Poll the metadata until ``name`` has ``partitions`` partitions, each with a leader."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics([name])
        if _topic_ready(described, name, partitions):
            return
        if time.monotonic() >= deadline:
            raise TopicError(f"topic {name!r} not ready after {timeout_s} s: {described!r}")
        await asyncio.sleep(_POLL_S)


async def create_topic(
    bootstrap: str,
    name: str,
    *,
    partitions: int,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    exist_ok: bool = False,
    timeout_s: float = 30.0,
) -> None:
    """Create ``name`` with ``partitions`` partitions and return once every one has a leader."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        topic = NewTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            topic_configs=dict(config or {}),
        )
        response = await admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
        for entry in response.topic_errors:
            code = entry[1]
            if code == 0:
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError and exist_ok:
                continue
            detail = entry[2] if len(entry) > 2 else ""
            raise TopicError(f"create topic {name!r}: {error.__name__} {detail}")
        await wait_topic_ready(admin, name, partitions, timeout_s=timeout_s)
        logger.debug("topic %s ready with %d partitions", name, partitions)
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str], *, timeout_s: float = 30.0) -> None:
    """Delete topics (missing ones are ignored)."""
    if not names:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        await admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        await admin.close()
