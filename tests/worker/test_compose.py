"""docker-compose.yml cannot run here (no Docker engine), so it is validated instead: it parses,
every mounted file exists, every ``PWM_*`` variable is a real setting and validates, ports and
addresses agree across services and with the code (the worker's metrics port is what Prometheus
scrapes and health-checks, DSNs point at the ClickHouse service with its credentials, the Kafka
the tests run is the Kafka compose runs ...), the commands parse with the CLI, promtool and
amtool accept the Prometheus and Alertmanager configurations, and the exported alert rules are
up to date (Grafana, its dashboards and its read-only ClickHouse user: tests/grafana_dashboards).
The ``cluster`` profile is checked the same way: its env file
turns every storage user to the cluster, the servers' shard/replica macros match their place
in ``remote_servers`` (2 shards x 2 replicas), ClickHouse's configuration loader reads each
server's file with its environment as expected, Keeper addresses and ids agree, and the schema
those settings render is parsed by ClickHouse."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from api.settings import ApiSettings
from producer.kafka_settings import KafkaTransportSettings
from stream_app.alerting.settings import AlertingSettings
from stream_app.cli import build_parser
from stream_app.cli_alerts import alerts_export_prometheus
from stream_app.simulator.settings import SimulatorSettings
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.worker.settings import WorkerSettings, load_worker_settings
from stream_app.worker.simulate import SimulatedProducerSettings
from tests.support.policy import require_tool
from tests.support.settings import DEFAULT_KAFKA_VERSION, HarnessSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
CLUSTER_DIR = REPO / "docker/clickhouse-cluster"
CLUSTER_SERVICES = {"keeper-1", "keeper-2", "keeper-3", "ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
# Variables compose requires (``${VAR:?message}``): set as a user must before `up`.
REQUIRED_ENV = {
    "PWM_GRAFANA_CH_PASSWORD": "ro-secret",
    "PWM_GRAFANA_ADMIN_PASSWORD": "admin-secret",
}

# Prefix -> settings class (longest prefix first: PWM_PRODUCER_KAFKA_ before PWM_PRODUCER_).
SETTINGS: list[tuple[str, type[Any]]] = [
    ("PWM_PRODUCER_KAFKA_", KafkaTransportSettings),
    ("PWM_PRODUCER_", SimulatedProducerSettings),
    ("PWM_WORKER_", WorkerSettings),
    ("PWM_STORAGE_", StorageSettings),
    ("PWM_API_", ApiSettings),
    ("PWM_ALERTING_", AlertingSettings),
    ("PWM_SIMULATOR_", SimulatorSettings),
]


def _interpolate(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Compose's ``${VAR:-default}``: ``env``'s value, else the default (an empty .env);
    ``${VAR:?message}``: ``env``'s value, else an error (compose refuses to start)."""
    env = {**REQUIRED_ENV, **(env or {})}

    def variable(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if kind == "?":
            assert env.get(name), f"compose requires {name}: {text}"
            return env[name]
        return env.get(name) or text or ""

    if isinstance(value, str):
        return _VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    return _interpolate(doc)  # type: ignore[no-any-return]


def _env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def cluster_compose() -> dict[str, Any]:
    """The file as ``--env-file docker/clickhouse-cluster/cluster.env`` interpolates it."""
    doc = yaml.safe_load(COMPOSE.read_text())
    return _interpolate(doc, _env_file(CLUSTER_DIR / "cluster.env"))  # type: ignore[no-any-return]


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def _setting_names(cls: type[Any], prefix: str) -> set[str]:
    """Every environment variable ``cls`` reads (nested models with ``__``)."""
    names: set[str] = set()

    def walk(model: type[Any], path: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, f"{path}{name.upper()}__")
            names.add(f"{path}{name.upper()}")

    walk(cls, prefix)
    return names


def test_compose_parses_with_the_expected_services(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services) == {
        "kafka",
        "clickhouse",
        "topics",
        "migrate",
        "worker",
        "api",
        "prometheus",
        "alertmanager",
        "grafana",
        "simulator",
        *CLUSTER_SERVICES,
    }
    assert services["simulator"]["profiles"] == ["demo"]
    for name in CLUSTER_SERVICES:
        assert services[name]["profiles"] == ["cluster"], name
    profiled = {"simulator", *CLUSTER_SERVICES}
    assert all("profiles" not in s for name, s in services.items() if name not in profiled)
    assert services["worker"]["deploy"]["replicas"] >= 2
    image = services["kafka"]["image"]
    assert image == f"apache/kafka:{DEFAULT_KAFKA_VERSION}", "compose runs the Kafka the tests run"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def _mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        yield source, target


def test_every_mounted_file_and_the_build_exist(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for source, _ in _mounts(service):
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        build = service.get("build")
        if build:
            dockerfile = REPO / build["context"] / build["dockerfile"]
            assert dockerfile.is_file()
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    for source in shlex.split(line)[1:-1]:
                        assert (REPO / build["context"] / source).exists(), line


def test_every_pwm_variable_is_a_setting_and_validates(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    for name, service in _services(compose).items():
        env = {k: v for k, v in _env(service).items() if k.startswith("PWM_")}
        for variable in env:
            prefix, cls = next((p, c) for p, c in SETTINGS if variable.startswith(p))
            assert variable in _setting_names(cls, prefix), f"{name}: {variable} is no setting"
        with monkeypatch.context() as patched:
            for variable, value in env.items():
                patched.setenv(variable, value)
            used = {cls for p, cls in SETTINGS if any(v.startswith(p) for v in env)}
            for cls in used:
                if cls is WorkerSettings:
                    load_worker_settings()
                else:
                    cls()
                checked += 1
    assert checked >= 8


def test_ports_addresses_and_credentials_agree(compose: dict[str, Any]) -> None:
    services = _services(compose)
    worker = _env(services["worker"])
    settings, storage = _worker_settings(worker)
    # Kafka: everyone inside the stack uses the advertised internal listener.
    kafka = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "EXTERNAL://localhost:19092" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "19092:19092" in services["kafka"]["ports"]
    for variable in ("PWM_WORKER_BOOTSTRAP_SERVERS", "PWM_ALERTING_KAFKA_BOOTSTRAP_SERVERS"):
        assert worker[variable] == "kafka:9092"
    assert _env(services["topics"])["PWM_WORKER_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert _env(services["simulator"])["PWM_PRODUCER_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    prefixes = {
        worker["PWM_WORKER_TOPIC_PREFIX"],
        worker["PWM_ALERTING_TOPIC_PREFIX"],
        _env(services["topics"])["PWM_WORKER_TOPIC_PREFIX"],
        _env(services["simulator"])["PWM_PRODUCER_KAFKA_TOPIC_PREFIX"],
    }
    assert prefixes == {settings.topic_prefix}
    # ClickHouse: DSN host/port/credentials/database = the server's.
    clickhouse = services["clickhouse"]["environment"]
    for name in ("worker", "api", "migrate"):
        env = _env(services[name])
        dsn = urlsplit(env["PWM_STORAGE_DSN"])
        assert (dsn.hostname, dsn.port) == ("clickhouse", 8123), name
        assert (dsn.username, dsn.password) == (
            clickhouse["CLICKHOUSE_USER"],
            clickhouse["CLICKHOUSE_PASSWORD"],
        ), name
        assert env["PWM_STORAGE_DATABASE"] == clickhouse["CLICKHOUSE_DB"], name
    assert storage.database == clickhouse["CLICKHOUSE_DB"]
    grafana = services["grafana"]["environment"]
    assert grafana["CLICKHOUSE_DB"] == clickhouse["CLICKHOUSE_DB"]  # its user: grafana_dashboards
    datasources = yaml.safe_load(
        (REPO / "docker/grafana/provisioning/datasources/datasources.yaml").read_text()
    )["datasources"]
    ch = next(d for d in datasources if d["type"] == "grafana-clickhouse-datasource")
    assert (ch["jsonData"]["host"], ch["jsonData"]["port"]) == ("${CLICKHOUSE_HOST}", 8123)
    assert grafana["CLICKHOUSE_HOST"] == "clickhouse"
    assert storage.cluster == ""
    # The worker's metrics: bound for scraping, the port Prometheus scrapes and health-checks.
    assert settings.metrics_host == "0.0.0.0"
    prometheus = yaml.safe_load((REPO / "docker/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    (dns,) = jobs["proxywhirl-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"]
    assert dns["port"] == settings.metrics_port
    health = " ".join(services["worker"]["healthcheck"]["test"])
    assert f"localhost:{settings.metrics_port}/health" in health
    assert jobs["proxywhirl-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert "8000:8000" in services["api"]["ports"]
    # Alertmanager: where ProxyWhirl and Prometheus send alerts.
    urls = json.loads(worker["PWM_ALERTING_ALERTMANAGER_URLS"])
    assert urls == ["http://alertmanager:9093"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    assert "9093:9093" in services["alertmanager"]["ports"]
    # The rules file the services read is the mounted one.
    rules = Path(worker["PWM_ALERTING_RULES_FILE"])
    (source,) = [s for s, t in _mounts(services["worker"]) if rules.is_relative_to(t)]
    target = next(t for s, t in _mounts(services["worker"]) if s == source)
    assert (REPO / source / rules.relative_to(target)).is_file()


def _worker_settings(env: dict[str, str]) -> tuple[WorkerSettings, StorageSettings]:
    with pytest.MonkeyPatch.context() as patched:
        for variable, value in env.items():
            patched.setenv(variable, value)
        return load_worker_settings()


def test_service_commands_parse_with_the_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    services = _services(compose)
    for name in ("topics", "migrate", "worker", "simulator", "api"):
        args = parser.parse_args(services[name]["command"])
        assert callable(args.handler), name
    api = parser.parse_args(services["api"]["command"])
    assert (api.command, api.host, api.port) == ("api", "0.0.0.0", 8000)
    assert "api:8000" in (REPO / "docker/prometheus/prometheus.yml").read_text()


def test_prometheus_config_and_rules_pass_promtool(promtool: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "docker/prometheus/prometheus.yml").read_text())
    config["rule_files"] = [str(REPO / "docker/prometheus/rules/*.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [str(promtool), "check", "config", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout + checked.stderr


def test_exported_rules_are_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "rules.yml"
    code = alerts_export_prometheus(
        REPO / "config/rules.example.yaml",
        window_s=10,
        output=fresh,
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert code == 0
    committed = (REPO / "docker/prometheus/rules/proxywhirl.rules.yml").read_text()
    assert committed == fresh.read_text(), "regenerate: see docs/operations.md"


def test_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = require_tool(HarnessSettings(), "amtool", "prometheus-alertmanager")
    checked = subprocess.run(
        [str(amtool), "check-config", str(REPO / "docker/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def _xml(path: Path) -> ET.Element:
    return ET.fromstring(path.read_text())


def test_cluster_profile_topology_agrees(cluster_compose: dict[str, Any]) -> None:
    services = _services(cluster_compose)
    config = _xml(CLUSTER_DIR / "config.d/cluster.xml")
    keeper = _xml(CLUSTER_DIR / "keeper/keeper.xml")
    # Every storage user is turned to the cluster by the env file.
    remote_servers = config.find("remote_servers")
    assert remote_servers is not None
    (cluster,) = list(remote_servers)
    dsn_hosts = set()
    for name in ("migrate", "worker", "api"):
        env = _env(services[name])
        with pytest.MonkeyPatch.context() as patched:
            for variable, value in env.items():
                if variable.startswith("PWM_STORAGE_"):
                    patched.setenv(variable, value)
            storage = StorageSettings()
        assert storage.cluster == cluster.tag, name
        dsn_hosts.add((urlsplit(storage.dsn).hostname, urlsplit(storage.dsn).port))
    assert _env(services["grafana"])["CLICKHOUSE_HOST"] == "ch-s1r1"
    assert dsn_hosts == {("ch-s1r1", 8123)}
    depends = services["migrate"]["depends_on"]
    servers = {n for n in services if n.startswith("ch-")}
    assert all(depends[n] == {"condition": "service_healthy", "required": False} for n in servers)
    # 2 shards x 2 replicas; each server's macros name its own place.
    shards = cluster.findall("shard")
    assert [len(shard.findall("replica")) for shard in shards] == [2, 2]
    assert cluster.find("secret") is not None
    places = {}
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        for replica in shard.findall("replica"):
            places[replica.findtext("host")] = (str(number), replica.findtext("port"))
    assert set(places) == servers
    macros = config.find("macros")
    assert macros is not None
    assert {m.tag: m.get("from_env") for m in macros} == {
        "shard": "CH_SHARD",
        "replica": "CH_REPLICA",
    }
    replicas = set()
    for name in servers:
        service = services[name]
        env = _env(service)
        assert service["hostname"] == name
        assert (env["CH_SHARD"], "9000") == places[name], name
        replicas.add(env["CH_REPLICA"])
        assert env["CH_INTERSERVER_SECRET"], name
        targets = {t for _, t in _mounts(service)}
        assert "/etc/clickhouse-server/config.d/pwm-cluster.xml" in targets
        assert "/etc/clickhouse-server/users.d/pwm-profile.xml" in targets
        assert service["image"] == services["clickhouse"]["image"]
    assert len(replicas) == 4
    storage_defaults = StorageSettings(dsn="http://h:8123", cluster="pwm")
    used = set(
        re.findall(r"\{(\w+)\}", storage_defaults.replica_path + storage_defaults.replica_name)
    )
    assert used <= {m.tag for m in macros} | {"database", "table"}
    # Keeper: the servers' client list, the raft members and the services agree.
    keepers = {n for n in services if n.startswith("keeper-")}
    assert len(keepers) % 2 == 1
    tcp_port = keeper.findtext("keeper_server/tcp_port")
    nodes = {(n.findtext("host"), n.findtext("port")) for n in config.iter("node")}
    assert nodes == {(k, tcp_port) for k in keepers}
    raft = {
        s.findtext("hostname"): s.findtext("id")
        for s in keeper.iter("server")
        if s.findtext("hostname")
    }
    assert raft == {k: _env(services[k])["KEEPER_SERVER_ID"] for k in keepers}
    server_id = keeper.find("keeper_server/server_id")
    assert server_id is not None
    assert server_id.get("from_env") == "KEEPER_SERVER_ID"
    # Inserts through Distributed tables wait for the shards (docs/operations.md).
    profile = _xml(CLUSTER_DIR / "users.d/pwm-profile.xml")
    assert profile.findtext("profiles/default/distributed_foreground_insert") == "1"


def test_cluster_profile_schema_parses(
    cluster_compose: dict[str, Any], worker_storage: StorageSettings
) -> None:
    env = _env(_services(cluster_compose)["migrate"])
    with pytest.MonkeyPatch.context() as patched:
        for variable, value in env.items():
            patched.setenv(variable, value)
        storage = StorageSettings()
    client = get_client(worker_storage)
    migrator = Migrator(client, storage)
    statements = [s for m in migrator.migrations for s in migrator.render(m, "up")]
    assert any("ENGINE = Distributed('pwm'" in s for s in statements)
    for statement in migrator.bookkeeping_statements() + statements:
        client.rows("SELECT formatQuery({sql:String})", {"sql": statement})
    # The profile's settings are ones the server knows (ClickHouse refuses to start otherwise).
    profile = _xml(CLUSTER_DIR / "users.d/pwm-profile.xml").find("profiles/default")
    assert profile is not None
    names = [setting.tag for setting in profile]
    known = client.rows(
        "SELECT name FROM system.settings WHERE has({names:Array(String)}, name)",
        {"names": names},
    )
    assert sorted(name for (name,) in known) == sorted(names)


_SERVER_PROBE = """
import json, sys
import chdb
connection = chdb.connect(f"file:{sys.argv[1]}?config-file={sys.argv[2]}")
cursor = connection.cursor()
cursor.execute("SELECT cluster, shard_num, replica_num, host_name, port FROM system.clusters")
clusters = cursor.fetchall()
cursor.execute("SELECT macro, substitution FROM system.macros")
print(json.dumps({"clusters": clusters, "macros": dict(cursor.fetchall())}))
"""


def test_cluster_servers_read_their_configuration(
    cluster_compose: dict[str, Any], tmp_path: Path
) -> None:
    """ClickHouse's own configuration loader (chDB's) reads the file every server mounts, with
    each server's environment: the cluster it reports and its macros are the expected ones."""
    services = _services(cluster_compose)
    servers = sorted(n for n in services if n.startswith("ch-"))
    config = CLUSTER_DIR / "config.d/cluster.xml"
    for name in servers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
        env |= {k: v for k, v in _env(services[name]).items() if k.startswith("CH_")}
        done = subprocess.run(
            [sys.executable, "-c", _SERVER_PROBE, str(tmp_path / name), str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert sorted(map(tuple, seen["clusters"])) == [
            ("pwm", 1, 1, "ch-s1r1", 9000),
            ("pwm", 1, 2, "ch-s1r2", 9000),
            ("pwm", 2, 1, "ch-s2r1", 9000),
            ("pwm", 2, 2, "ch-s2r2", 9000),
        ]
        assert seen["macros"] == {"shard": name[4], "replica": name}, name
