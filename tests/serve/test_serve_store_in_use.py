"""A second process pointed at a store a ``serve`` holds says so in one line and exits 2; the
demo serves HTTP and prints its URL."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_kit import ServeServer, child_env, cli_argv, run_cli

from tests.support.ports import free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def held_store(tmp_path_factory: pytest.TempPathFactory) -> ServeServer:
    base = tmp_path_factory.mktemp("held")
    server = ServeServer(base / "data", base / "serve.log")
    server.start()
    yield server
    assert server.stop() == 0, server.process.log_tail()


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["api", "--port", "0"],
        ["migrate"],
        ["alerts", "history"],
        ["serve", "--port", "0"],
    ],
    ids=["report", "api", "migrate", "alerts-history", "second-serve"],
)
def test_a_second_process_on_a_held_store_says_so_in_one_line(
    held_store: ServeServer, command: list[str]
) -> None:
    proc = run_cli(*command, "--data-dir", str(held_store.data_dir), timeout_s=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    (line,) = lines
    assert "Traceback" not in line
    assert str(held_store.data_dir / "clickhouse") in line
    assert "in use by 'proxywhirl-metrics serve'" in line
    assert f"query the running server's API at {held_store.url}" in line
    assert held_store.ready(), "the holder must keep serving"


def test_the_store_is_free_again_once_its_holder_is_killed(tmp_path: Path) -> None:
    server = ServeServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    server.kill()  # SIGKILL: the kernel drops the lock with the process
    proc = run_cli("report", "--data-dir", str(server.data_dir), "--json", timeout_s=60)
    assert proc.returncode == 0, proc.stderr


# The defaults scaled down 5x (10 s windows, answers shared for 2 s): with the cache's default
# 2 s, an empty answer taken at start-up could be served for the whole 2 s window.
_DEMO_WINDOWS = {
    "PWM_PIPELINE__WINDOW_S": "2",
    "PWM_PIPELINE__GRACE_MS": "500",
    "PWM_PIPELINE__PROXY_WINDOW_S": "10",
    "PWM_PIPELINE__FLUSH_INTERVAL_MS": "250",
    "PWM_API_WINDOW_S": "2",
    "PWM_API_GRACE_MS": "500",
    "PWM_API_CACHE_TTL_S": "0.4",
}


def test_demo_prints_its_url_and_answers_within_one_window(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        demo = subprocess.Popen(
            cli_argv("demo", "--data-dir", str(tmp_path / "data"), "--port", str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(_DEMO_WINDOWS),
        )
    try:
        assert wait_until(
            lambda: f"demo: serving {url} " in log_path.read_text(),
            timeout_s=60,
            abort=lambda: None if demo.poll() is None else "demo exited",
        ), log_path.read_text()
        serving_at = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=2).json() == {"status": "ok"}

        def summary() -> dict[str, Any]:
            response = httpx.get(f"{url}/api/v1/summary", timeout=2)
            assert response.status_code == 200, response.text
            doc: dict[str, Any] = response.json()
            return doc

        window_s = 2
        assert wait_until(lambda: bool(summary()["scopes"]), timeout_s=window_s)
        assert time.monotonic() - serving_at <= window_s + 0.5
        # The first closed window (window + grace + the API's settle delay) carries metrics.
        assert wait_until(
            lambda: any(s["metrics"] is not None for s in summary()["scopes"]), timeout_s=20
        ), summary()
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(60)
    assert code == 0, log_path.read_text()
    assert "demo: stopped after" in log_path.read_text()
