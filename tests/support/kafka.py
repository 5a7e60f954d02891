"""Pytest fixtures for Kafka.

* ``kafka_broker`` (session): a :class:`KafkaEndpoint`. The broker named by
  ``KAFKA_BOOTSTRAP_SERVERS`` if set; else a testcontainers Kafka if ``docker info`` succeeds;
  else a real Apache Kafka (KRaft, single node) from the Maven Central jars, started once per
  session. Shared by every test: create your own topics (``kafka_topic_factory``), never stop it.
* ``kafka_bootstrap`` (session): its ``"127.0.0.1:PORT"``.
* ``kafka_outage_broker`` (function): a dedicated :class:`KafkaBroker` the test may ``stop()``,
  ``kill()``, ``start()`` and ``restart()`` (same port, same data); always the Maven-jar broker.
* ``kafka_topic_factory`` (function): ``await kafka_topic_factory(partitions=6)`` creates a
  uniquely named topic, waits until every partition has a leader, returns its name, and deletes
  it after the test. ``bootstrap=`` targets another broker (e.g. the outage broker).

When Java is missing the Kafka tests skip with the reason; in CI (``CI=true``) they fail.
Any other start failure fails the test everywhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaError  # type: ignore[import-untyped, unused-ignore]

from .errors import HarnessStartError, ToolMissing
from .kafka_admin import cluster_ready, create_topic, delete_topics
from .kafka_broker import KafkaBroker
from .kafka_container import docker_engine_answers, kafka_container
from .kafka_dist import kafka_distribution
from .policy import unavailable
from .settings import HarnessSettings

logger = logging.getLogger(__name__)

_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")


@dataclass(frozen=True)
class KafkaEndpoint:
    """A broker the session shares: where it is and where it came from."""

    bootstrap: str
    origin: str  # "env" (KAFKA_BOOTSTRAP_SERVERS), "testcontainers" or "maven"
    version: str | None  # the Kafka version, when the harness chose it
    broker: KafkaBroker | None  # the process (origin "maven") for logs; do not stop it


@pytest.fixture(scope="session")
def harness_settings() -> HarnessSettings:
    """The harness configuration, read from the environment once per session."""
    return HarnessSettings()


def new_kafka_broker(
    settings: HarnessSettings, work_dir_factory: pytest.TempPathFactory, name: str
) -> KafkaBroker:
    """A started Maven-jar broker (Java missing: skip locally, fail in CI)."""
    try:
        dist = kafka_distribution(settings)
    except ToolMissing as exc:
        unavailable(settings, f"no Kafka broker: {exc}")
    broker = KafkaBroker(
        dist,
        work_dir_factory.mktemp(name),
        heap_mb=settings.kafka_heap_mb,
        start_timeout_s=settings.kafka_start_timeout_s,
        stop_timeout_s=settings.kafka_stop_timeout_s,
        quick_jit=settings.kafka_quick_jit,
    )
    broker.start()
    return broker


def _await_external(bootstrap: str, timeout_s: float) -> None:
    async def wait() -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await cluster_ready(bootstrap):
                return True
            await asyncio.sleep(0.2)
        return False

    # A worker thread: this may run inside a test's event loop (lazy ``kafka_bootstrap``).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(asyncio.run, wait()).result()
    if not answered:
        raise HarnessStartError(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} does not answer")


@pytest.fixture(scope="session")
def kafka_broker(
    harness_settings: HarnessSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaEndpoint]:
    settings = harness_settings
    if settings.kafka_bootstrap_servers:
        _await_external(settings.kafka_bootstrap_servers, settings.kafka_start_timeout_s)
        yield KafkaEndpoint(settings.kafka_bootstrap_servers, "env", None, None)
        return
    if settings.kafka_use_docker and docker_engine_answers():
        image = settings.kafka_container_image
        with kafka_container(image, start_timeout_s=settings.kafka_start_timeout_s) as bootstrap:
            yield KafkaEndpoint(bootstrap, "testcontainers", None, None)
        return
    broker = new_kafka_broker(settings, tmp_path_factory, "kafka-session")
    try:
        yield KafkaEndpoint(broker.bootstrap, "maven", settings.kafka_version, broker)
    finally:
        broker.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaEndpoint) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_outage_broker(
    harness_settings: HarnessSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    broker = new_kafka_broker(harness_settings, tmp_path_factory, "kafka-outage")
    try:
        yield broker
    finally:
        broker.close()


class TopicFactory:
    """Creates uniquely named, ready topics and remembers them for clean-up."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._stem = _TOPIC_CHARS.sub("-", request.node.name)[:80].strip("-.") or "topic"
        self.created: list[tuple[str, str]] = []  # (bootstrap, topic)

    async def __call__(
        self,
        partitions: int = 1,
        *,
        name: str | None = None,
        bootstrap: str | None = None,
        config: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> str:
        shared = bootstrap is None
        target = bootstrap or str(self._request.getfixturevalue("kafka_bootstrap"))
        topic = name or f"{self._stem}-{uuid.uuid4().hex[:8]}"
        await create_topic(target, topic, partitions=partitions, config=config, timeout_s=timeout_s)
        if shared:  # topics of a dedicated broker go away with its data directory
            self.created.append((target, topic))
        return topic

    async def cleanup(self) -> None:
        """Delete the topics created on the shared session broker."""
        by_broker: dict[str, list[str]] = {}
        for target, topic in self.created:
            by_broker.setdefault(target, []).append(topic)
        for target, topics in by_broker.items():
            try:
                async with asyncio.timeout(15):
                    await delete_topics(target, topics, timeout_s=10)
            except (KafkaError, OSError, TimeoutError) as exc:
                logger.warning("could not delete topics %s on %s: %r", topics, target, exc)


@pytest.fixture
async def kafka_topic_factory(request: pytest.FixtureRequest) -> AsyncIterator[TopicFactory]:
    factory = TopicFactory(request)
    yield factory
    await factory.cleanup()
