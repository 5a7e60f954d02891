"""Prometheus for tests (Debian ``prometheus`` package): ``promtool`` and a real server.

``promtool`` (session) is the path of the binary; :func:`check_rules` runs
``promtool check rules FILE...`` and returns the completed process (exit 0 = valid).

:class:`PrometheusServer` runs ``prometheus`` on a free loopback port with its TSDB in a work
directory, scraping the given targets and evaluating the given rule files every
``interval_s``; ``start()`` returns once ``GET /-/ready`` answers 200. Fixture
``prometheus_factory`` (function): ``prom = prometheus_factory(targets, rule_files)`` starts one;
all are stopped after the test. A missing binary skips the test locally and fails it in CI.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .errors import HarnessStartError
from .policy import require_tool
from .ports import LOOPBACK, free_port
from .process import ManagedProcess
from .settings import HarnessSettings

_POLL_S = 0.05


def check_rules(
    promtool: Path, *rule_files: Path, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``promtool check rules``: exit code 0 when every file is a valid rules file."""
    return subprocess.run(
        [str(promtool), "check", "rules", *map(str, rule_files)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="session")
def promtool(harness_settings: HarnessSettings) -> Path:
    return require_tool(harness_settings, harness_settings.promtool_bin, "prometheus")


class PrometheusServer:
    """One Prometheus process scraping ``targets`` (``host:port``) and evaluating rules."""

    def __init__(
        self,
        binary: Path,
        work_dir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        *,
        interval_s: float = 1.0,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.interval_s = interval_s
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = free_port()
        self._process = ManagedProcess(
            "prometheus", [], log_path=work_dir / "prometheus.log", cwd=work_dir
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        interval = f"{round(self.interval_s * 1000)}ms"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {"job_name": "under-test", "static_configs": [{"targets": self.targets}]}
            ],
        }

    def start(self) -> None:
        """Start and block until ``/-/ready`` answers 200."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self._process.argv = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=info",
        ]
        self._process.start()
        deadline = time.monotonic() + self.start_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                reason = self._process.exit_reason()
                if reason is not None:
                    raise HarnessStartError(f"prometheus exited: {reason}\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    self._process.kill()
                    raise HarnessStartError(
                        f"prometheus not ready within {self.start_timeout_s} s\n{self.log_tail()}"
                    )
                time.sleep(_POLL_S)

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v1/alerts``: the active (pending or firing) alerts."""
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=5.0)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def stop(self) -> None:
        self._process.terminate(self.stop_timeout_s)

    def log_tail(self, max_lines: int = 40) -> str:
        return self._process.log_tail(max_lines)


class PrometheusFactory:
    """Starts Prometheus servers for one test and stops them all afterwards."""

    def __init__(self, binary: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._binary = binary
        self._tmp = tmp_path_factory
        self.started: list[PrometheusServer] = []

    def __call__(
        self, targets: Sequence[str], rule_files: Sequence[Path] = (), **options: Any
    ) -> PrometheusServer:
        server = PrometheusServer(
            self._binary, self._tmp.mktemp("prometheus"), targets, rule_files, **options
        )
        self.started.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def prometheus_factory(
    harness_settings: HarnessSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusFactory]:
    binary = require_tool(harness_settings, harness_settings.prometheus_bin, "prometheus")
    factory = PrometheusFactory(binary, tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()
