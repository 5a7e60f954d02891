"""The fleet-host install: the wheel's base and ``[kafka]`` bring the producer, not the service.

The wheel is built from the working tree, installed into two fresh virtual environments
(dependencies resolved from the package index, pinned to requirements.lock), and each is checked
from the outside (installed distributions) and from the inside (modules a fleet host imports).
Then events go through the installed producer: into an in-process sink for the base, and into
the session's real Kafka broker for ``[kafka]``, read back and decoded here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from schemas.wire import decode_batch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVICE_DISTRIBUTIONS = {"faust-streaming", "chdb", "clickhouse-connect", "fastapi", "uvicorn"}
SERVICE_MODULES = {"faust", "chdb", "clickhouse_connect", "fastapi", "uvicorn", "stream_app", "api"}
INSTALL_TIMEOUT_S = 300

INSPECT = """
import importlib.metadata as md, json, re, sys
import producer, producer.settings, producer.transport
import schemas.wire, schemas.events, schemas.aggregates, schemas.alerts, schemas.latency_buckets
extra = sys.argv[1:]
for name in extra:
    __import__(name)
print(json.dumps({
    "distributions": sorted(
        {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in md.distributions()}
    ),
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""

NO_KAFKA = """
import sys
from producer.kafka import KafkaTransport, KafkaTransportSettings
KafkaTransport(KafkaTransportSettings(bootstrap_servers="127.0.0.1:9", spool_path=sys.argv[1]))
"""

IN_PROCESS = """
import json
from producer import InProcessTransport, MetricsProducer, Outcome, ProducerSettings
from schemas.wire import decode_batch
envelopes = []
producer = MetricsProducer(
    ProducerSettings(source_host="fleet-host-1", fleet_key="k" * 32, close_at_exit=False),
    InProcessTransport(lambda pool, payload: envelopes.append(payload)),
)
for i in range(300):
    producer.emit(pool=("eu-res", "us-dc")[i % 2], region="eu", outcome=Outcome.SUCCESS,
                  proxy_id=producer.proxy_id(f"10.0.0.{i % 7}:8080"),
                  latency_ms=10.0 + i, status_code=200)
producer.close()
batches = [decode_batch(e) for e in envelopes]
print(json.dumps({"events": sum(len(b.events) for b in batches),
                  "pools": sorted({b.pool for b in batches})}))
"""

TO_KAFKA = """
import json, sys, time
from producer import MetricsProducer, Outcome, ProducerSettings
from producer.kafka import KafkaTransport, KafkaTransportSettings
bootstrap, prefix, spool = sys.argv[1:4]
producer = MetricsProducer(
    ProducerSettings(source_host="fleet-host-2", fleet_key="k" * 32, close_at_exit=False),
    transport := KafkaTransport(KafkaTransportSettings(
        bootstrap_servers=bootstrap, topic_prefix=prefix, spool_path=spool)),
)
for i in range(200):
    producer.emit(pool=("eu-res", "us-dc")[i % 2], region="eu", outcome=Outcome.SUCCESS,
                  latency_ms=5.0 + i, status_code=200)
assert producer.flush(timeout_s=60), "flush timed out"
# flush() hands envelopes to the transport, which may spool them until the broker answers.
deadline = time.monotonic() + 60
while (stats := transport.stats()).sent_events < 200:
    assert time.monotonic() < deadline, stats
    time.sleep(0.05)
producer.close(timeout_s=60)
print(json.dumps({"delivered": stats.sent_events}))
"""


def _run(args: list[str], timeout_s: float = INSTALL_TIMEOUT_S) -> str:
    # The fresh environments have no coverage; the build and installs need none either.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the tree (the shared work tree stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in ("schemas", "producer", "stream_app", "api"):
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("--disable-pip-version-check", "-w", str(out), str(source)),
        ]
    )
    (built,) = out.glob("proxywhirl_metrics-*.whl")
    return built


def _venv(root: Path, requirement: str) -> Path:
    _run([sys.executable, "-m", "venv", str(root)], timeout_s=120)
    python = root / "bin" / "python"
    _run(
        [
            *(str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *("--constraint", str(REPO / "requirements.lock"), requirement),
        ]
    )
    return python


@pytest.fixture(scope="module")
def base_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("venv-base"), str(wheel))


@pytest.fixture(scope="module")
def kafka_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(
        tmp_path_factory.mktemp("venv-kafka"), f"proxywhirl-metrics[kafka] @ {wheel.as_uri()}"
    )


def _inspect(python: Path, *imports: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_run([str(python), "-c", INSPECT, *imports], 60))
    return result


def test_base_install_is_the_producer_and_the_schemas(base_python: Path) -> None:
    seen = _inspect(base_python)
    distributions = set(seen["distributions"])
    assert "proxywhirl-metrics" in distributions
    assert {"pydantic", "msgspec", "prometheus-client"} <= distributions
    assert not distributions & (SERVICE_DISTRIBUTIONS | {"aiokafka", "orjson", "pyyaml"})
    assert not set(seen["modules"]) & SERVICE_MODULES
    # Without [kafka], the Kafka transport refuses to start and names what is missing.
    missing = subprocess.run(
        [str(base_python), "-c", NO_KAFKA, str(base_python.parent / "spool.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")},
    )
    assert missing.returncode != 0
    assert "No module named 'aiokafka'" in missing.stderr

    result = json.loads(_run([str(base_python), "-c", IN_PROCESS], 60))
    assert result["events"] == 300
    assert result["pools"] == ["eu-res", "us-dc"]


async def test_kafka_install_sends_to_a_real_broker(
    kafka_python: Path, kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    seen = _inspect(kafka_python, "producer.kafka")
    distributions = set(seen["distributions"])
    assert {"aiokafka", "cramjam"} <= distributions
    assert not distributions & SERVICE_DISTRIBUTIONS
    assert not set(seen["modules"]) & SERVICE_MODULES

    prefix = f"light-{time.time_ns()}"
    topic = await kafka_topic_factory(partitions=2, name=f"{prefix}.requests")
    sent = _run(
        [str(kafka_python), "-c", TO_KAFKA, kafka_bootstrap, prefix, str(tmp_path / "spool.db")],
        120,
    )
    assert json.loads(sent) == {"delivered": 200}

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        events: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            assert time.monotonic() < deadline, "records did not arrive"
            for records in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
                for record in records:
                    batch = decode_batch(record.value)
                    assert record.key == batch.pool.encode()
                    events[batch.pool] = events.get(batch.pool, 0) + len(batch.events)
    finally:
        await consumer.stop()
    assert events == {"eu-res": 100, "us-dc": 100}
