"""Every provisioned dashboard, by file name (docker/grafana/dashboards/<name>.json)."""

from __future__ import annotations

from collections.abc import Callable

from dashgen.clickhouse_dashboards import fleet_overview, pool_region, proxies
from dashgen.model import Dashboard
from dashgen.other_dashboards import json_overview, pipeline_health

__all__ = ["DASHBOARDS"]

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "proxywhirl-overview": fleet_overview,
    "proxywhirl-pool-region": pool_region,
    "proxywhirl-proxies": proxies,
    "proxywhirl-pipeline": pipeline_health,
    "proxywhirl-overview-json": json_overview,
}
