"""The provisioned Grafana is safe: its ClickHouse datasource logs in as a read-only user
limited to the metrics database, nobody queries without signing in, and no password is
committed (compose refuses to start without them). The configuration files are parsed and
checked against each other; the read-only profile's settings are applied on chDB to show that
the dashboards' queries run under them and that writes are refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml
from dashboard_files import GRAFANA, REPO
from grafana_expand import ALL, GrafanaVariable
from seed import POOLS, REGIONS, Seeded
from test_dashboard_queries import Runner, queries_of, span

from api.routes.grafana import router as grafana_router
from stream_app.storage.client import StorageClient
from stream_app.storage.errors import StorageError

USERS_XML = REPO / "docker/clickhouse-cluster/users.d/pwm-grafana-readonly.xml"
USERS_D = "/etc/clickhouse-server/users.d/pwm-grafana-readonly.xml"
REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as committed (before interpolation)."""
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def reader() -> ET.Element:
    users = ET.parse(USERS_XML).getroot().find("users")
    assert users is not None
    (user,) = list(users)
    return user


def profile_settings() -> dict[str, str]:
    user = reader()
    profiles = ET.parse(USERS_XML).getroot().find("profiles")
    assert profiles is not None
    profile = profiles.find(user.findtext("profile") or "")
    assert profile is not None
    return {s.tag: s.text or "" for s in profile if s.tag != "constraints"}


def required_variable(value: str) -> str:
    """The host variable of a ``${VAR:?message}`` value (no default: compose needs it set)."""
    match = REQUIRED.match(value)
    assert match is not None, f"{value!r} has a default or is committed"
    return match.group(1)


def test_the_reader_can_only_read_the_metrics_database() -> None:
    user = reader()
    password = user.find("password")
    assert password is not None
    assert password.get("from_env") == "CLICKHOUSE_GRAFANA_PASSWORD"
    assert not (password.text or "").strip()  # never in the file
    assert user.find("password_sha256_hex") is None
    databases = user.findall("allow_databases/database")
    assert [d.get("from_env") for d in databases] == ["CLICKHOUSE_DB"]
    assert user.findtext("access_management") == "0"
    settings = profile_settings()
    assert settings["readonly"] == "2"  # no writes or DDL; the plugin may still set settings
    constraints = (
        ET.parse(USERS_XML).getroot().find(f"profiles/{user.findtext('profile')}/constraints")
    )
    assert constraints is not None
    assert constraints.find("readonly/const") is not None  # a query cannot lift it


def test_the_profile_settings_exist_and_refuse_writes(
    chdb_client: StorageClient, seeded: Seeded, dashboards: dict[str, dict[str, Any]]
) -> None:
    settings = profile_settings()
    known = chdb_client.rows(
        "SELECT name FROM system.settings WHERE has({names:Array(String)}, name)",
        {"names": list(settings)},
    )
    assert sorted(name for (name,) in known) == sorted(settings)
    clause = " SETTINGS " + ", ".join(
        f"{k} = {v if v.isdigit() else repr(v)}" for k, v in settings.items()
    )
    db = seeded.database
    for statement in (
        f"INSERT INTO {db}.agg_1h (pool) VALUES ('x')",
        f"CREATE TABLE {db}.grafana_was_here (x UInt8) ENGINE = Memory",
        f"DROP TABLE {db}.agg_1h",
    ):
        with pytest.raises(StorageError, match="readonly"):
            chdb_client.command(statement + clause)
    window = span(seeded, 90 * 86_400)
    values = {"pool": [ALL], "region": [ALL], "proxy": "0" * 64}
    ran = 0
    for name in ("proxywhirl-overview", "proxywhirl-pool-region", "proxywhirl-proxies"):
        runner = Runner(chdb_client, seeded, dashboards[name])
        runner.variables |= {
            "pool": GrafanaVariable("pool", True, True, "'__all__'", POOLS),
            "region": GrafanaVariable("region", True, True, "'__all__'", REGIONS),
        }
        for query in queries_of(dashboards[name]):
            chdb_client.rows(runner.sql(query.sql, window, values) + clause)
            ran += 1
    assert ran >= 25


def test_compose_passes_the_passwords_from_the_environment_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    grafana = services["grafana"]["environment"]
    writer = services["clickhouse"]["environment"]
    # ClickHouse: the reader's file is mounted, its password comes from the host's environment.
    for name, service in services.items():
        if name == "clickhouse" or name.startswith("ch-"):
            assert any(v.endswith(f"{USERS_D}:ro") for v in service["volumes"]), name
            env = service["environment"]
            assert required_variable(env["CLICKHOUSE_GRAFANA_PASSWORD"]) == (
                "PWM_GRAFANA_CH_PASSWORD"
            ), name
    # Grafana: logs in to ClickHouse as the reader, never as the user that writes.
    assert grafana["CLICKHOUSE_USER"] == reader().tag
    assert grafana["CLICKHOUSE_USER"] != writer["CLICKHOUSE_USER"]
    assert required_variable(grafana["CLICKHOUSE_PASSWORD"]) == "PWM_GRAFANA_CH_PASSWORD"
    assert grafana["CLICKHOUSE_DB"] == writer["CLICKHOUSE_DB"]
    # No anonymous access, no sign-up, the admin password from the environment.
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert required_variable(grafana["GF_SECURITY_ADMIN_PASSWORD"]) == "PWM_GRAFANA_ADMIN_PASSWORD"
    plugins = grafana["GF_INSTALL_PLUGINS"].split(",")
    assert re.fullmatch(r"grafana-clickhouse-datasource 4\.\d+\.\d+", plugins[0])  # v4 macros
    assert "simpod-json-datasource" in plugins
    mounts = dict(v.rsplit(":", 2)[:2] for v in services["grafana"]["volumes"] if v[0] == ".")
    assert mounts["./docker/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./docker/grafana/dashboards"] == "/var/lib/grafana/dashboards"


def test_datasources_use_the_environment_and_the_api_route() -> None:
    sources = {
        d["uid"]: d
        for d in yaml.safe_load(
            (GRAFANA / "provisioning/datasources/datasources.yaml").read_text()
        )["datasources"]
    }
    clickhouse = sources["proxywhirl-clickhouse"]
    assert clickhouse["jsonData"]["username"] == "${CLICKHOUSE_USER}"
    assert clickhouse["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"
    assert clickhouse["jsonData"]["defaultDatabase"] == "${CLICKHOUSE_DB}"
    api = sources["proxywhirl-json"]
    assert api["url"] == f"http://api:8000{grafana_router.prefix}"
    assert all(not d.get("editable", False) for d in sources.values())
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yaml").read_text())[
        "providers"
    ][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
