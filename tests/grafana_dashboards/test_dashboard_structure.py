"""The provisioned dashboards as Grafana reads them: up to date with their generator, panels of
known types on provisioned datasources (by uid), a description on every panel, links that keep
the selection, Prometheus expressions that promtool parses and whose metrics the code exports,
and JSON datasource targets the API answers."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import yaml
from dashboard_files import GRAFANA
from grafana_expand import ALL, GrafanaVariable, interpolate
from prometheus_client import CollectorRegistry

from api.app import _ApiCollector
from api.auth import AuthCounters
from api.grafana_model import payload_values
from api.grafana_scopes import DIMENSIONS
from api.grafana_targets import TARGETS
from api.routes.query import QueryCounters
from api.window_feed import FeedStatus
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.worker.metrics import WorkerCollector
from stream_app.worker.runtime import StreamWorker
from stream_app.worker.stats import WorkerStats

PANEL_TYPES = {"timeseries", "table"}
JSON_DATASOURCE = {"type": "simpod-json-datasource", "uid": "proxywhirl-json"}


def provisioned_datasources() -> dict[str, str]:
    path = GRAFANA / "provisioning/datasources/datasources.yaml"
    return {d["uid"]: d["type"] for d in yaml.safe_load(path.read_text())["datasources"]}


def panels(dashboards: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, dashboard in dashboards.items():
        for panel in dashboard["panels"]:
            yield name, panel


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    import generate  # docker/grafana/generate.py

    names = {p.stem for p in (GRAFANA / "dashboards").glob("*.json")}
    assert names == set(generate.DASHBOARDS)
    for name in names:
        committed = (GRAFANA / "dashboards" / f"{name}.json").read_text()
        assert committed == generate.render(name), f"regenerate: python {GRAFANA}/generate.py"


def test_dashboards_are_importable_and_reference_datasources_by_uid(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    sources = provisioned_datasources()
    assert sources[JSON_DATASOURCE["uid"]] == JSON_DATASOURCE["type"]
    assert {d["uid"] for d in dashboards.values()} == set(dashboards)  # file name = uid
    for name, dashboard in dashboards.items():
        assert "__inputs" not in dashboard, name  # no import-time datasource prompts
        assert dashboard["title"], name
        assert "proxywhirl" in dashboard["tags"], name
        used = [p["datasource"] for _, p in panels({name: dashboard})]
        used += [t["datasource"] for _, p in panels({name: dashboard}) for t in p["targets"]]
        used += [v["datasource"] for v in dashboard["templating"]["list"]]
        used += [a["datasource"] for a in dashboard["annotations"]["list"] if "target" in a]
        for datasource in used:
            assert sources.get(datasource["uid"]) == datasource["type"], (name, datasource)


def test_every_panel_is_described_and_laid_out(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        cells: set[tuple[int, int]] = set()
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            where = f"{name} / {panel['title']}"
            assert panel["type"] in PANEL_TYPES, where
            assert panel["targets"], where
            description = panel["description"]
            for part in ("What:", "How:", "When bad:"):
                assert part in description, f"{where}: the description lacks {part!r}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0, where
            assert grid["x"] + grid["w"] <= 24, where
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, f"{where} overlaps another panel"
            cells |= area


def test_links_keep_the_selection(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards", name
        assert link["tags"] == ["proxywhirl"], name
        assert link["includeVars"] is True, name
        assert link["keepTime"] is True, name
    data_links = 0
    for _, panel in panels(dashboards):
        for link in panel["fieldConfig"]["defaults"].get("links", []):
            target = re.match(r"/d/([\w-]+)/", link["url"])
            assert target is not None, link
            assert target.group(1) in dashboards, link
            assert "${__url_time_range}" in link["url"], link
            variables = {v["name"] for v in dashboards[target.group(1)]["templating"]["list"]}
            assert set(re.findall(r"var-(\w+)=", link["url"])) <= variables, link
            data_links += 1
    assert data_links >= 3


def test_variables_are_multi_valued_with_all_except_the_proxy(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    seen = 0
    for name, dashboard in dashboards.items():
        for variable in dashboard["templating"]["list"]:
            if variable["name"] in ("pool", "region"):
                assert variable["multi"], name
                assert variable["includeAll"], name
                assert variable["allValue"], name  # inserted as is (see dashgen/sql.py)
                assert variable["current"]["value"] == ["$__all"], name
                seen += 1
            else:
                assert variable["name"] == "proxy", name
                assert not variable["multi"], name
    assert seen == 2 * 4  # pool and region on every dashboard but the pipeline's


def _prometheus_exprs(dashboards: dict[str, dict[str, Any]]) -> list[str]:
    return [
        t["expr"]
        for _, p in panels(dashboards)
        for t in p["targets"]
        if t["datasource"]["type"] == "prometheus"
    ]


def _exposed(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


class _Worker:
    """What WorkerCollector reads of a worker (a real StreamWorker needs Kafka and storage)."""

    stats = WorkerStats()
    partitions = [0]
    lag = {0: 5}

    def partition_state(self, partition: int) -> None:
        return None


def test_every_metric_the_pipeline_dashboard_uses_is_exported(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    registry = CollectorRegistry()
    registry.register(WorkerCollector(cast(StreamWorker, _Worker())))
    registry.register(
        _ApiCollector(FeedStatus(last_success_s=1.0), AuthCounters(), QueryCounters())
    )
    AlertingMetrics(registry)
    exported = _exposed(registry)
    used = {
        name
        for expr in _prometheus_exprs(dashboards)
        for name in re.findall(r"\b(?:proxywhirl|pwm)_\w+", expr)
    }
    assert len(used) >= 15
    assert used <= exported, sorted(used - exported)


def test_promtool_parses_every_expression(
    dashboards: dict[str, dict[str, Any]], promtool: Path, tmp_path: Path
) -> None:
    exprs = _prometheus_exprs(dashboards)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": e.replace("$__rate_interval", "1m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout


def test_json_datasource_targets_are_ones_the_api_answers(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    dashboard = dashboards["proxywhirl-overview-json"]
    targets = [t for _, p in panels({"d": dashboard}) for t in p["targets"]]
    targets += [a["target"] for a in dashboard["annotations"]["list"] if "target" in a]
    assert len(targets) >= 8
    for target in targets:
        assert target["datasource"] == JSON_DATASOURCE
        spec = TARGETS.get(target["target"])
        assert spec is not None, target["target"]
        assert set(json.loads(target["payload"])) <= spec.payload, target
    variables = {
        v["name"]: GrafanaVariable.of(v, ["a", "b"]) for v in dashboard["templating"]["list"]
    }
    for variable in dashboard["templating"]["list"]:
        query = json.loads(variable["query"]["query"])
        assert query["target"] in DIMENSIONS
        assert set(query) - {"target"} <= set(DIMENSIONS)
    # The payloads as the plugin sends them (interpolated, then parsed), read as the API does.
    for selected, expected in (([ALL], None), (["a"], ["a"]), (["a", "b"], ["a", "b"])):
        for target in targets:
            text = interpolate(target["payload"], variables, {"pool": selected, "region": ["b"]})
            payload = json.loads(text)
            assert payload_values(payload["pool"]) == expected, text
            assert payload_values(payload["region"]) == ["b"], text
