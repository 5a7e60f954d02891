"""The harness's own logic: configuration, the CI rule, process stop escalation, CDS archives."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tests.support.alertmanager import Alertmanager
from tests.support.errors import HarnessStartError, ToolMissing
from tests.support.kafka import _await_external
from tests.support.kafka_broker import KafkaBroker
from tests.support.kafka_config import broker_properties, new_cluster_id, render_properties
from tests.support.kafka_dist import ClassDataArchive, KafkaDistribution, kafka_distribution
from tests.support.policy import require_tool, unavailable
from tests.support.ports import wait_until
from tests.support.process import ManagedProcess
from tests.support.settings import HarnessSettings

HARNESS_ENV = ("CI", "KAFKA_BOOTSTRAP_SERVERS", "PWM_TEST_KAFKA_VERSION", "PWM_TEST_CI")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in HARNESS_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_broker_listens_on_loopback_only_and_advertises_the_client_listener(
    tmp_path: Path,
) -> None:
    props = broker_properties(broker_port=19092, controller_port=19093, data_dir=tmp_path)
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    overridden = broker_properties(
        broker_port=1,
        controller_port=2,
        data_dir=tmp_path,
        auto_create_topics=True,
        extra={"num.partitions": "6"},
    )
    assert overridden["auto.create.topics.enable"] == "true"
    assert overridden["num.partitions"] == "6"


def test_properties_render_one_entry_per_line_with_escaped_backslashes() -> None:
    text = render_properties({"a.b": "1", "path": "C:\\x"})
    assert text == "a.b=1\npath=C:\\\\x\n"


def test_settings_read_ci_and_bootstrap_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert HarnessSettings().ci is False
    assert HarnessSettings().kafka_bootstrap_servers is None
    clean_env.setenv("CI", "true")
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9999")
    clean_env.setenv("PWM_TEST_KAFKA_VERSION", "3.9.1")
    settings = HarnessSettings()
    assert settings.ci is True
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9999"
    assert settings.kafka_version == "3.9.1"
    clean_env.setenv("CI", "")
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", " ")
    assert HarnessSettings().ci is False
    assert HarnessSettings().kafka_bootstrap_servers is None


def test_settings_reject_a_malformed_kafka_version(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PWM_TEST_KAFKA_VERSION", "latest")
    with pytest.raises(ValidationError):
        HarnessSettings()


def test_cache_root_follows_xdg_cache_home(tmp_path: Path) -> None:
    settings = HarnessSettings(XDG_CACHE_HOME=tmp_path)
    assert settings.cache_root == tmp_path / "proxywhirl-metrics"


def test_missing_tool_skips_locally_and_fails_in_ci(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-binary"
    with pytest.raises(pytest.skip.Exception, match="no-such-binary"):
        require_tool(HarnessSettings(CI=False), missing, "some-package")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool(HarnessSettings(CI=True), missing, "some-package")


def test_present_tool_resolves_by_path_and_by_name() -> None:
    settings = HarnessSettings(CI=True)
    assert require_tool(settings, Path(sys.executable), "python3") == Path(sys.executable)
    assert require_tool(settings, "sh", "dash").name == "sh"


def _spawn(tmp_path: Path, script: str) -> ManagedProcess:
    proc = ManagedProcess("sh", ["sh", "-c", script], log_path=tmp_path / "out.log")
    proc.start()
    assert wait_until(lambda: "ready" in proc.log_tail(), timeout_s=10)
    return proc


def test_terminate_escalates_to_kill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, 'trap "" TERM; echo ready; while :; do sleep 0.1; done')
    assert proc.terminate(timeout_s=0.5) == -9
    assert not proc.running
    assert proc.exit_reason() == "sh exited with code -9"


def test_terminate_stops_a_well_behaved_process_with_sigterm(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "echo ready; exec sleep 30")
    assert proc.terminate(timeout_s=10) == -15
    assert proc.exit_reason() == "sh exited with code -15"


def test_class_data_archive_is_published_only_after_a_clean_exit(tmp_path: Path) -> None:
    target = tmp_path / "broker.jsa"
    pending = tmp_path / "broker.partial"
    pending.write_bytes(b"archive")
    ClassDataArchive(("-XX:ArchiveClassesAtExit=x",), pending, target).commit(exited_cleanly=False)
    assert not pending.exists()
    assert not target.exists()
    pending.write_bytes(b"archive")
    ClassDataArchive(("-XX:ArchiveClassesAtExit=x",), pending, target).commit(exited_cleanly=True)
    assert target.read_bytes() == b"archive"
    assert not pending.exists()


def test_distribution_maps_an_existing_archive_and_dumps_a_missing_one(tmp_path: Path) -> None:
    libs = tmp_path / "kafka-9.9.9" / "libs"
    libs.mkdir(parents=True)
    dist = KafkaDistribution("9.9.9", libs, Path(sys.executable))
    first = dist.class_data_archive("broker")
    assert first.pending is not None
    assert first.jvm_args == (f"-XX:ArchiveClassesAtExit={first.pending}",)
    first.pending.write_bytes(b"jsa")
    first.commit(exited_cleanly=True)
    second = dist.class_data_archive("broker")
    assert second.pending is None
    assert second.jvm_args == (f"-XX:SharedArchiveFile={first.target}",)


def test_broker_start_failure_raises_with_the_log(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    fake_java = tmp_path / "java"
    fake_java.write_text("#!/bin/sh\necho 'no JVM here' >&2\nexit 3\n")
    fake_java.chmod(0o755)
    broker = KafkaBroker(KafkaDistribution("9.9.9", libs, fake_java), tmp_path / "work")
    with pytest.raises(HarnessStartError, match="no JVM here"):
        broker.start()
    assert not broker.running


def test_unreachable_external_broker_is_a_start_error() -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(HarnessStartError, match="does not answer"):
            _await_external(f"127.0.0.1:{port}", timeout_s=1.0)


def test_alertmanager_config_routes_everything_to_the_webhook(tmp_path: Path) -> None:
    am = Alertmanager(
        Path("/usr/bin/prometheus-alertmanager"),
        tmp_path,
        "http://127.0.0.1:1/hook",
        group_by=("alertname", "pool"),
        group_wait_s=0.1,
        group_interval_s=1.5,
    )
    config = am.config()
    assert config["route"] == {
        "receiver": "webhook",
        "group_by": ["alertname", "pool"],
        "group_wait": "100ms",
        "group_interval": "1500ms",
        "repeat_interval": "3600000ms",
    }
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"] == [
        {"url": "http://127.0.0.1:1/hook", "send_resolved": True}
    ]
    assert am.url.startswith("http://127.0.0.1:")


def test_alertmanager_config_is_accepted_by_amtool_check_config(
    harness_settings: HarnessSettings, tmp_path: Path
) -> None:
    amtool = require_tool(harness_settings, "/usr/bin/amtool", "prometheus-alertmanager")
    am = Alertmanager(Path("/usr/bin/prometheus-alertmanager"), tmp_path, "http://127.0.0.1:1/h")
    am.config_path.write_text(yaml.safe_dump(am.config()))
    done = subprocess.run(
        [str(amtool), "check-config", str(am.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_moves_to_new_ports_when_its_port_is_taken(
    harness_settings: HarnessSettings, tmp_path: Path
) -> None:
    try:
        dist = kafka_distribution(harness_settings)
    except ToolMissing as exc:
        unavailable(harness_settings, str(exc))
    broker = KafkaBroker(dist, tmp_path, quick_jit=harness_settings.kafka_quick_jit)
    taken = broker.controller_port  # bound early in start-up: the clash shows up sooner
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            broker.start()
            assert broker.running
            assert broker.controller_port != taken
            logs = broker.server_log.read_text() + (broker.log_dir / "stdout.log").read_text()
            assert "Address already in use" in logs
        finally:
            broker.close()
