"""The testcontainers path: a Kafka container, used only where a Docker engine answers.

The machine this project is developed on has no Docker engine (only the CLI), so the fixtures
use the Maven-jar broker there; this path serves developers and CI runners that have one. The
image is ``PWM_TEST_KAFKA_CONTAINER_IMAGE`` (Confluent's cp-kafka 8.x is Apache Kafka 4.x).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import HarnessStartError


def docker_engine_answers(timeout_s: float = 10.0) -> bool:
    """Whether ``docker info`` succeeds (a CLI without a reachable engine fails it at once)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=timeout_s, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return False
    return done.returncode == 0


@contextmanager
def kafka_container(image: str, *, start_timeout_s: float) -> Iterator[str]:
    """Run a single-node KRaft Kafka container; yields its ``host:port`` bootstrap address."""
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(image=image).with_kraft()
    try:
        container.start(timeout=int(start_timeout_s))
    except Exception as exc:  # docker/testcontainers raise many unrelated types
        raise HarnessStartError(f"Kafka container {image} did not start: {exc}") from exc
    try:
        yield str(container.get_bootstrap_server())
    finally:
        container.stop()
