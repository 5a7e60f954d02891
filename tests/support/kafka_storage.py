"""Formatted KRaft storage for new brokers: ``kafka-storage format`` once per process, then copies.

Formatting starts a JVM (1.5 s on a quiet machine, 3-5 s on 2 busy cores). So the first broker a
process needs formats a template (with a generated cluster id) and every broker gets a copy of
it. The brokers share that cluster id, which each only compares with its own meta.properties:
they are separate single-node clusters on separate ports and data directories.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .errors import HarnessStartError
from .kafka_config import broker_properties, log4j2_properties, new_cluster_id, render_properties
from .kafka_dist import STORAGE_TOOL_MAIN, KafkaDistribution
from .process import tail

FORMAT_TIMEOUT_S = 120.0
_lock = threading.Lock()
_templates: dict[Path, Path] = {}  # libs dir -> formatted template data dir


def run_storage_format(
    dist: KafkaDistribution,
    *,
    cluster_id: str,
    config_path: Path,
    log4j_config: Path,
    log_path: Path,
    timeout_s: float,
) -> None:
    """``kafka-storage format`` the log dirs named in ``config_path`` for ``cluster_id``."""
    cds = dist.class_data_archive("storage")
    argv = [
        str(dist.java),
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        "-XX:-UsePerfData",
        *cds.jvm_args,
        f"-Dlog4j2.configurationFile={log4j_config}",
        "-cp",
        dist.classpath,
        STORAGE_TOOL_MAIN,
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(config_path),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            done = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            cds.commit(exited_cleanly=False)
            raise HarnessStartError(f"kafka-storage format took over {timeout_s} s") from exc
    cds.commit(exited_cleanly=done.returncode == 0)
    if done.returncode != 0:
        raise HarnessStartError(
            f"kafka-storage format failed (exit {done.returncode}):\n{tail(log_path)}"
        )


def read_cluster_id(data_dir: Path) -> str:
    """The ``cluster.id`` in a formatted data directory's meta.properties."""
    for line in (data_dir / "meta.properties").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    raise HarnessStartError(f"{data_dir}/meta.properties has no cluster.id")


def _make_template(dist: KafkaDistribution) -> Path:
    root = Path(tempfile.mkdtemp(prefix="pwm-kafka-format-"))
    atexit.register(shutil.rmtree, root, True)
    data_dir = root / "data"
    config_path = root / "server.properties"
    props = broker_properties(broker_port=1, controller_port=2, data_dir=data_dir)
    config_path.write_text(render_properties(props))
    log4j_path = root / "log4j2.properties"
    log4j_path.write_text(log4j2_properties(root / "format-server.log"))
    run_storage_format(
        dist,
        cluster_id=new_cluster_id(),
        config_path=config_path,
        log4j_config=log4j_path,
        log_path=root / "format.log",
        timeout_s=FORMAT_TIMEOUT_S,
    )
    return data_dir


def formatted_storage(dist: KafkaDistribution, data_dir: Path) -> str:
    """Fill the (absent or empty) ``data_dir`` with formatted storage; return its cluster id."""
    with _lock:
        template = _templates.get(dist.libs_dir)
        if template is None or not (template / "meta.properties").is_file():
            template = _make_template(dist)
            _templates[dist.libs_dir] = template
    if data_dir.exists():
        shutil.rmtree(data_dir)
    shutil.copytree(template, data_dir)
    return read_cluster_id(data_dir)
