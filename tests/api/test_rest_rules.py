"""/api/v1/rules: reads for all, admin writes validated, audited and hot-reloaded like the file."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.rules import RuleSet
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.rules_watcher import RulesFileWatcher
from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import ADMIN_TOKEN, READ_TOKEN, build_app, client

Storage = tuple[StorageSettings, StorageClient]
NOW_MS = time.time_ns() // 1_000_000
DEMO_RULES = Path(__file__).resolve().parents[2] / "config" / "rules.demo.yaml"

NEW_RULE = {
    "id": "api-added-latency",
    "name": "ApiAddedLatency",
    "kind": "threshold",
    "metric": "latency_p95_ms",
    "op": ">",
    "threshold": 2500,
    "level": "pool_region",
    "for_s": 30,
    "severity": "warning",
}


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    shutil.copyfile(DEMO_RULES, path)
    return path


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


class _Applied:
    def __init__(self) -> None:
        self.sets: list[RuleSet] = []

    def __call__(self, rule_set: RuleSet) -> None:
        self.sets.append(rule_set)


async def test_read_the_rules(api_storage: Storage, rules_path: Path) -> None:
    async with client(build_app(api_storage, NOW_MS, rules_path=rules_path)) as http:
        response = await http.get("/api/v1/rules")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["text"] == DEMO_RULES.read_text()
    assert "scope-error-rate" in {r["id"] for r in body["rules"]}


async def test_admin_put_is_validated_audited_and_reloaded_by_the_watcher(
    api_storage: Storage, rules_path: Path
) -> None:
    settings, storage_client = api_storage
    audit = RuleAuditWriter(storage_client, settings.database)
    applied = _Applied()
    watcher = RulesFileWatcher(
        rules_path, applied, AlertingMetrics(CollectorRegistry()), audit=audit
    )
    await watcher.load_initial()
    before = {r.rule_id for r in audit.read()}

    edited = _text(rules_path).replace("threshold: 0.15", "threshold: 0.25", 1)
    app = build_app(api_storage, NOW_MS, rules_path=rules_path)
    async with client(app, READ_TOKEN) as http:
        refused = await http.put(
            "/api/v1/rules", content=edited, headers={"content-type": "application/yaml"}
        )
    assert refused.status_code == 403
    async with client(app, ADMIN_TOKEN) as http:
        response = await http.put(
            "/api/v1/rules", content=edited, headers={"content-type": "application/yaml"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == [{"rule_id": "scope-error-rate", "action": "changed"}]
    assert _text(rules_path) == edited  # the text as sent, comments kept
    assert not list(rules_path.parent.glob(".rules.yaml.*"))  # no temporary file left

    rows = [r for r in audit.read() if r.actor == "api:ops"]
    assert [(r.rule_id, r.action) for r in rows] == [("scope-error-rate", "changed")]
    assert '"threshold":0.25' in rows[0].after
    assert before  # the file's first load was audited too

    # the running watcher reloads the new file, and finds the change already audited
    assert await watcher.check_once()
    assert applied.sets[-1].digest == response.json()["digest"]
    assert not [r for r in audit.read() if r.actor.startswith("file:") and r.action == "changed"]


async def test_an_invalid_body_is_a_422_naming_the_problems_and_keeps_the_rules(
    api_storage: Storage, rules_path: Path
) -> None:
    settings, storage_client = api_storage
    audit = RuleAuditWriter(storage_client, settings.database)
    original = _text(rules_path)
    broken = original.replace("threshold: 0.15", "threshold: 7", 1).replace(
        "kind: threshold", "kind: thresold", 1
    )
    async with client(build_app(api_storage, NOW_MS, rules_path=rules_path), ADMIN_TOKEN) as http:
        response = await http.put(
            "/api/v1/rules", content=broken, headers={"content-type": "application/yaml"}
        )
        not_yaml = await http.put(
            "/api/v1/rules", content=b"rules: [\xff", headers={"content-type": "application/yaml"}
        )
        wrong_type = await http.put(
            "/api/v1/rules", content=b"<rules/>", headers={"content-type": "application/xml"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problems = response.json()["problems"]
    assert problems
    assert any("scope-error-rate" in p and "request body:" in p for p in problems)
    assert not_yaml.status_code == 422
    assert wrong_type.status_code == 415
    assert _text(rules_path) == original
    assert audit.read() == []


async def test_admin_post_adds_one_rule_and_refuses_a_duplicate(
    api_storage: Storage, rules_path: Path
) -> None:
    async with client(build_app(api_storage, NOW_MS, rules_path=rules_path), ADMIN_TOKEN) as http:
        added = await http.post("/api/v1/rules", json=NEW_RULE)
        again = await http.post("/api/v1/rules", json=NEW_RULE)
        rules = (await http.get("/api/v1/rules")).json()
    assert added.status_code == 200, added.text
    assert {"rule_id": "api-added-latency", "action": "added"} in added.json()["changes"]
    assert again.status_code == 422
    assert "api-added-latency" in again.json()["detail"]
    ids = [r["id"] for r in rules["rules"]]
    assert ids.count("api-added-latency") == 1
    assert "scope-error-rate" in ids  # the other rules kept


async def test_without_a_rules_file_the_rules_routes_are_404(api_storage: Storage) -> None:
    async with client(build_app(api_storage, NOW_MS), ADMIN_TOKEN) as http:
        assert (await http.get("/api/v1/rules")).status_code == 404
        assert (await http.post("/api/v1/rules", json=NEW_RULE)).status_code == 404


async def test_no_audit_no_change(api_storage: Storage, rules_path: Path) -> None:
    settings, storage_client = api_storage
    broken = (settings.model_copy(update={"database": "api_missing_db"}), storage_client)
    original = _text(rules_path)
    edited = original.replace("threshold: 0.15", "threshold: 0.25", 1)
    async with client(build_app(broken, NOW_MS, rules_path=rules_path), ADMIN_TOKEN) as http:
        response = await http.put(
            "/api/v1/rules", content=edited, headers={"content-type": "application/yaml"}
        )
    assert response.status_code == 503
    assert "api_missing_db" not in response.text
    assert _text(rules_path) == original
