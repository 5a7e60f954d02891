"""The configuration files of a single-node KRaft broker+controller for tests.

Choices: loopback listeners only; auto topic creation OFF (tests and services create their
topics explicitly, so a typo fails loudly instead of creating a topic); internal topics with
replication factor 1 and few partitions (a first consumer group is ready in well under a
second); no initial rebalance delay; a short broker session (a killed broker's successor can
register within seconds); a low minimum group session timeout so crash tests may use
short sessions; small thread pools and cleaner buffer for a 2-core machine. Logs go to a file.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from pathlib import Path

NODE_ID = 1


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes, URL-safe base64 without padding, never '-' first."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def broker_properties(
    *,
    broker_port: int,
    controller_port: int,
    data_dir: Path,
    auto_create_topics: bool = False,
    num_partitions: int = 1,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``server.properties`` entries for node 1 as broker and controller on 127.0.0.1."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "auto.create.topics.enable": str(auto_create_topics).lower(),
        "num.partitions": str(num_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # A killed broker's registration blocks its successor until this session expires.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "500",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "4",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }
    props.update(extra or {})
    return props


def render_properties(props: Mapping[str, str]) -> str:
    """Java properties text (values here never need escaping beyond backslashes)."""
    return "".join(f"{key}={value.replace(chr(92), chr(92) * 2)}\n" for key, value in props.items())


def log4j2_properties(log_file: Path) -> str:
    """Log4j 2: INFO to ``log_file`` only (nothing on the console), chatty loggers at WARN."""
    quiet = (
        "kafka.request.logger",
        "state.change.logger",
        "kafka.log.LogCleaner",
        "org.apache.kafka.storage.internals.log",
        "org.apache.kafka.controller",
        "kafka.server.metadata",
        "org.apache.kafka.image.loader",
        "org.apache.kafka.clients",
    )
    lines = [
        "status = warn",
        "appender.file.type = File",
        "appender.file.name = FILE",
        f"appender.file.fileName = {log_file}",
        "appender.file.append = true",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = FILE",
    ]
    for index, name in enumerate(quiet):
        lines += [f"logger.q{index}.name = {name}", f"logger.q{index}.level = WARN"]
    return "\n".join(lines) + "\n"
