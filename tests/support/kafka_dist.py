"""The Apache Kafka distribution the harness runs: Maven Central jars (cached) and a Java binary.

``scripts/kafka/fetch.sh`` resolves ``org.apache.kafka:kafka_2.13`` and its runtime classpath
once into ``${XDG_CACHE_HOME:-~/.cache}/proxywhirl-metrics/kafka-<version>/libs``. Main classes
(found by inspecting the 4.x jars): ``kafka.Kafka`` (the server) and ``kafka.tools.StorageTool``
(``kafka-storage format``), both in ``kafka_2.13-<version>.jar``.

Start-up cost is mostly class loading, so each JVM role gets an AppCDS archive next to the jars
(``cds/<role>-<java key>.jsa``): the first clean exit of a role writes it
(``-XX:ArchiveClassesAtExit``), later runs map it (``-XX:SharedArchiveFile``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import HarnessStartError
from .policy import find_tool
from .settings import HarnessSettings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "scripts" / "kafka" / "fetch.sh"
SERVER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
JAVA_PACKAGE = "openjdk-17-jre-headless"


@dataclass(frozen=True)
class ClassDataArchive:
    """JVM flags for one run of a role, and where a freshly dumped archive must be moved."""

    jvm_args: tuple[str, ...]
    pending: Path | None
    target: Path

    def commit(self, exited_cleanly: bool) -> None:
        """Publish a dumped archive after a clean exit; drop it otherwise."""
        if self.pending is None:
            return
        if exited_cleanly and self.pending.is_file() and self.pending.stat().st_size > 0:
            os.replace(self.pending, self.target)
            logger.info("class-data archive written: %s", self.target)
        else:
            self.pending.unlink(missing_ok=True)


@dataclass(frozen=True)
class KafkaDistribution:
    """Where the jars of one Kafka version are and which ``java`` runs them."""

    version: str
    libs_dir: Path
    java: Path

    @property
    def home(self) -> Path:
        return self.libs_dir.parent

    @property
    def classpath(self) -> str:
        return f"{self.libs_dir}/*"

    def class_data_archive(self, role: str) -> ClassDataArchive:
        """CDS flags for ``role`` ("broker", "storage"): map the archive, or dump one at exit."""
        stat = self.java.resolve().stat()
        key = hashlib.sha256(
            f"{self.java.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        ).hexdigest()[:12]
        target = self.home / "cds" / f"{role}-{key}.jsa"
        if target.is_file():
            return ClassDataArchive((f"-XX:SharedArchiveFile={target}",), None, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        pending = target.with_name(f"{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
        return ClassDataArchive((f"-XX:ArchiveClassesAtExit={pending}",), pending, target)


def fetch_libs(settings: HarnessSettings) -> Path:
    """Run ``scripts/kafka/fetch.sh`` (a no-op once cached) and return the libs directory."""
    env = dict(os.environ)
    env["KAFKA_VERSION"] = settings.kafka_version
    env["XDG_CACHE_HOME"] = str(settings.cache_root.parent)
    try:
        done = subprocess.run(
            ["bash", str(FETCH_SCRIPT), settings.kafka_version],
            env=env,
            capture_output=True,
            text=True,
            timeout=settings.kafka_fetch_timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessStartError(
            f"fetching Kafka {settings.kafka_version} took over {settings.kafka_fetch_timeout_s} s"
        ) from exc
    if done.returncode != 0:
        raise HarnessStartError(
            f"scripts/kafka/fetch.sh failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    libs = Path(done.stdout.strip().splitlines()[-1])
    if not (libs / f"kafka_2.13-{settings.kafka_version}.jar").is_file():
        raise HarnessStartError(f"fetch.sh reported {libs}, which has no kafka_2.13 jar")
    return libs


def kafka_distribution(settings: HarnessSettings) -> KafkaDistribution:
    """Java (raises :class:`ToolMissing` when absent) and the fetched jars of the set version."""
    java = find_tool(settings.java_bin, JAVA_PACKAGE)
    return KafkaDistribution(settings.kafka_version, fetch_libs(settings), java)
