"""Debian's Prometheus Alertmanager (0.25 on bookworm) as a real service for tests.

:class:`Alertmanager` writes a config whose only route sends every alert to one webhook receiver
(a URL the test gives; ``send_resolved: true``) with short group timings, and runs
``prometheus-alertmanager`` with ``--web.listen-address=127.0.0.1:<free port>``, gossip off
(``--cluster.listen-address=``) and storage in its work directory; ``start()`` returns once
``GET /-/ready`` answers 200.

Fixture ``alertmanager_factory`` (function): ``am = alertmanager_factory(webhook_url)`` starts
one (keyword arguments as :class:`Alertmanager`); all are stopped after the test. A missing
binary skips the test locally and fails it in CI.
"""

from __future__ import annotations

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
_BIND_ATTEMPTS = 3


def _duration(seconds: float) -> str:
    """A Prometheus duration string, in milliseconds."""
    return f"{round(seconds * 1000)}ms"


class Alertmanager:
    """One Alertmanager process with a single webhook receiver."""

    def __init__(
        self,
        binary: Path,
        work_dir: Path,
        webhook_url: str,
        *,
        group_by: Sequence[str] = ("alertname",),
        group_wait_s: float = 0.1,
        group_interval_s: float = 1.0,
        repeat_interval_s: float = 3600.0,
        resolve_timeout_s: float = 300.0,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.webhook_url = webhook_url
        self.group_by = list(group_by)
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.repeat_interval_s = repeat_interval_s
        self.resolve_timeout_s = resolve_timeout_s
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = free_port()
        self._process = ManagedProcess(
            "alertmanager", [], log_path=work_dir / "alertmanager.log", cwd=work_dir
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (API under ``/api/v2``)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "alertmanager.yml"

    @property
    def running(self) -> bool:
        return self._process.running

    def config(self) -> dict[str, Any]:
        """The Alertmanager configuration as a mapping (written as YAML)."""
        return {
            "global": {"resolve_timeout": _duration(self.resolve_timeout_s)},
            "route": {
                "receiver": "webhook",
                "group_by": self.group_by,
                "group_wait": _duration(self.group_wait_s),
                "group_interval": _duration(self.group_interval_s),
                "repeat_interval": _duration(self.repeat_interval_s),
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
                }
            ],
        }

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.work_dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def start(self) -> None:
        """Start and block until ``/-/ready`` answers 200."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._process.argv = self._argv()
            self._process.start()
            failure = self._await_ready()
            if failure is None:
                return
            self._process.kill()
            log_text = self._process.log_tail()
            if "address already in use" in log_text and attempt < _BIND_ATTEMPTS:
                self.port = free_port()
                continue
            raise HarnessStartError(f"alertmanager did not start: {failure}\n{log_text}")

    def _await_ready(self) -> str | None:
        deadline = time.monotonic() + self.start_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                reason = self._process.exit_reason()
                if reason is not None:
                    return reason
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return None
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    return f"{self.url}/-/ready not 200 within {self.start_timeout_s} s"
                time.sleep(_POLL_S)

    def stop(self) -> None:
        self._process.terminate(self.stop_timeout_s)

    def log_tail(self, max_lines: int = 40) -> str:
        return self._process.log_tail(max_lines)


class AlertmanagerFactory:
    """Starts Alertmanagers for one test and stops them all afterwards."""

    def __init__(self, binary: Path, tmp_path_factory: pytest.TempPathFactory, timeout_s: float):
        self._binary = binary
        self._tmp = tmp_path_factory
        self._timeout_s = timeout_s
        self.started: list[Alertmanager] = []

    def __call__(self, webhook_url: str, **options: Any) -> Alertmanager:
        options.setdefault("start_timeout_s", self._timeout_s)
        manager = Alertmanager(
            self._binary, self._tmp.mktemp("alertmanager"), webhook_url, **options
        )
        self.started.append(manager)
        manager.start()
        return manager

    def stop_all(self) -> None:
        for manager in self.started:
            manager.stop()


@pytest.fixture
def alertmanager_factory(
    harness_settings: HarnessSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AlertmanagerFactory]:
    binary = require_tool(
        harness_settings, harness_settings.alertmanager_bin, "prometheus-alertmanager"
    )
    factory = AlertmanagerFactory(
        binary, tmp_path_factory, harness_settings.alertmanager_start_timeout_s
    )
    try:
        yield factory
    finally:
        factory.stop_all()
