"""Grafana dashboard JSON (schemaVersion 39: Grafana 10.4 to 12 read it): panels, targets,
variables, links. Datasources are referenced by uid, the ones provisioned by
docker/grafana/provisioning/datasources/datasources.yaml (and the JSON datasource's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashgen.sql import ALL_VALUE

__all__ = [
    "CLICKHOUSE",
    "JSON_API",
    "PROMETHEUS",
    "Dashboard",
    "Panel",
    "clickhouse_target",
    "clickhouse_variable",
    "json_target",
    "prometheus_target",
]

Json = dict[str, Any]

CLICKHOUSE: Json = {"type": "grafana-clickhouse-datasource", "uid": "proxywhirl-clickhouse"}
PROMETHEUS: Json = {"type": "prometheus", "uid": "proxywhirl-prometheus"}
JSON_API: Json = {"type": "simpod-json-datasource", "uid": "proxywhirl-json"}

TAG = "proxywhirl"
SCHEMA_VERSION = 39


def clickhouse_target(sql: str, *, table: bool = False, ref_id: str = "A") -> Json:
    """A raw-SQL target of the ClickHouse plugin v4 (format 0: time series, 1: table)."""
    return {
        "refId": ref_id,
        "datasource": CLICKHOUSE,
        "editorType": "sql",
        "format": 1 if table else 0,
        "queryType": "table" if table else "timeseries",
        "rawSql": sql,
    }


def prometheus_target(expr: str, legend: str = "__auto", ref_id: str = "A") -> Json:
    return {
        "refId": ref_id,
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
    }


def json_target(target: str, payload: str, ref_id: str = "A") -> Json:
    """A target of the JSON datasource (simpod-json-datasource): a name and a JSON payload."""
    return {
        "refId": ref_id,
        "datasource": JSON_API,
        "editorMode": "code",
        "target": target,
        "payload": payload,
    }


def clickhouse_variable(name: str, label: str, sql: str, *, multi: bool = True) -> Json:
    """A query variable; multi-valued ones have All with the custom value ``'__all__'``."""
    variable: Json = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": CLICKHOUSE,
        "query": sql,
        "definition": sql,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "options": [],
    }
    if multi:
        variable["allValue"] = ALL_VALUE
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        variable["current"] = {}
    return variable


@dataclass
class Panel:
    """One panel; ``width`` of 24 columns, laid out left to right, top to bottom."""

    type: str  # "timeseries" | "table" | "stat"
    title: str
    description: str
    datasource: Json
    targets: list[Json]
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: bool = False
    links: list[Json] = field(default_factory=list)
    overrides: list[Json] = field(default_factory=list)
    max_data_points: int | None = None
    """Fewer points than the panel's width: a coarser step (panels with many series)."""

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"unit": self.unit}
        if self.type == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 20 if self.stack else 0,
                "spanNulls": False,
                "stacking": {"mode": "normal" if self.stack else "none", "group": "A"},
            }
        if self.links:
            defaults["links"] = self.links
        panel: Json = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": self.datasource,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": _options(self.type),
            "targets": self.targets,
        }
        if self.max_data_points is not None:
            panel["maxDataPoints"] = self.max_data_points
        return panel


def _options(panel_type: str) -> Json:
    if panel_type == "timeseries":
        return {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if panel_type == "table":
        return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return {}


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    variables: list[Json] = field(default_factory=list)
    annotations: list[Json] = field(default_factory=list)
    time_from: str = "now-24h"
    refresh: str = "1m"

    def to_json(self) -> Json:
        panels = []
        x = y = row_height = 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.to_json(panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG],
            "timezone": "utc",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "links": [
                {
                    "title": "ProxyWhirl dashboards",
                    "type": "dashboards",
                    "tags": [TAG],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "targetBlank": False,
                    "icon": "external link",
                }
            ],
            "templating": {"list": self.variables},
            "annotations": {"list": [_builtin_annotations(), *self.annotations]},
            "panels": panels,
        }


def _builtin_annotations() -> Json:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
