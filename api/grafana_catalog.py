"""What the Grafana JSON datasource offers: its metrics, payload options, variable values and
ad-hoc filter values, in the shapes of the simpod-json-datasource contract.

- ``/metrics``: ``[{"value", "label", "payloads": [{"name", "label", "type", "options"?}]}]``;
- ``/metric-payload-options``: ``[{"label", "value"}]`` for one payload of one metric;
- ``/variable``: ``[{"__text", "__value"}]`` (pools, regions or the proxies of a pool);
- ``/tag-keys``: ``[{"type": "string", "text"}]``, ``/tag-values``: ``[{"text"}]``.

Stored names come from the query layer (:meth:`StorageQueries.pools_regions`, and
:meth:`StorageQueries.top_proxies` for a pool's proxies). Blocking: call from a thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from api.grafana_model import AdHocFilter
from api.grafana_scopes import DIMENSIONS, GrafanaRequestError, Selection, known_values, select
from api.grafana_targets import TARGETS, TargetSpec
from schemas.alerts import Severity
from schemas.events import Outcome
from stream_app.storage.queries import StorageQueries

__all__ = [
    "PAYLOAD_NAMES",
    "metric_configs",
    "payload_options",
    "tag_keys",
    "tag_values",
    "variable_values",
]

Json = dict[str, Any]

_STATIC_OPTIONS: dict[str, list[str]] = {
    "group_by": ["pool", "region", "pool,region"],
    "outcome": [o.value for o in Outcome if o is not Outcome.SUCCESS],
    "by": ["error_rate", "latency_p95_ms"],
    "severity": [s.value for s in Severity],
}
_PAYLOADS: dict[str, Json] = {
    "pool": {"label": "Pool", "type": "multi-select", "placeholder": "all pools"},
    "region": {"label": "Region", "type": "multi-select", "placeholder": "all regions"},
    "proxy": {"label": "Proxy", "type": "multi-select", "placeholder": "proxy ids (HMAC)"},
    "group_by": {"label": "Group by", "type": "select", "placeholder": "one series in all"},
    "outcome": {"label": "Outcome", "type": "select"},
    "by": {"label": "Worst by", "type": "select", "placeholder": "error_rate"},
    "limit": {"label": "Proxies", "type": "input", "placeholder": "10"},
    "min_requests": {"label": "Min requests", "type": "input", "placeholder": "10"},
    "severity": {"label": "Severity", "type": "select"},
    "rule_id": {"label": "Rule id", "type": "input"},
}
PAYLOAD_NAMES = frozenset(_PAYLOADS)
"""Every payload key a target takes."""

_ORDER = ("pool", "region", "proxy", "group_by", "outcome", "by", "limit", "min_requests")
_PROXY_POOLS = 10
_PROXY_VALUES = 200


def _payload_config(name: str) -> Json:
    config: Json = {"name": name, **_PAYLOADS[name]}
    if name in _STATIC_OPTIONS:
        config["options"] = [{"label": v, "value": v} for v in _STATIC_OPTIONS[name]]
    return config


def _metric_config(spec: TargetSpec) -> Json:
    names = sorted(spec.payload, key=lambda n: (*_ORDER, n).index(n))
    return {
        "value": spec.name,
        "label": f"{spec.name} ({spec.kind}: {spec.label})",
        "payloads": [_payload_config(n) for n in names],
    }


def metric_configs(metric: str | None = None) -> list[Json]:
    """Every target with its payloads (``metric``: the current one first)."""
    specs = sorted(TARGETS.values(), key=lambda s: (s.name != metric, s.kind != "timeseries"))
    return [_metric_config(s) for s in specs]


def _labelled(values: Iterable[str]) -> list[Json]:
    return [{"label": v, "value": v} for v in values]


def _scoped_values(
    queries: StorageQueries, since_ms: int, dimension: str, selection: Selection
) -> list[str]:
    pairs = queries.pools_regions(since_ms)
    index = DIMENSIONS.index(dimension)
    other = DIMENSIONS[1 - index]
    include, exclude = selection.include[other], selection.exclude[other]
    kept = [
        p
        for p in pairs
        if (include is None or p[1 - index] in include) and p[1 - index] not in exclude
    ]
    return [v for v in known_values(kept, dimension) if v not in selection.exclude[dimension]]


def _proxies(
    queries: StorageQueries, selection: Selection, start_ms: int, end_ms: int
) -> list[str]:
    pools = selection.include["pool"]
    if not pools or len(pools) > _PROXY_POOLS:
        raise GrafanaRequestError(
            f"payload pool: the proxies of one to {_PROXY_POOLS} pools; choose the pool first"
        )
    region = selection.single("region")
    found: list[str] = []
    for pool in sorted(pools):
        worst = queries.top_proxies(
            start_ms,
            end_ms,
            pool=pool,
            region=region,
            min_requests=1,
            limit=max(1, _PROXY_VALUES // len(pools)),
        )
        found.extend(t.proxy_id for t in worst if t.proxy_id)
    return list(dict.fromkeys(found))


def payload_options(
    queries: StorageQueries,
    name: str,
    payload: Mapping[str, Any],
    *,
    since_ms: int,
    start_ms: int,
    end_ms: int,
) -> list[Json]:
    """The options of payload ``name`` given the rest of ``payload``."""
    if name in _STATIC_OPTIONS:
        return _labelled(_STATIC_OPTIONS[name])
    if name not in _PAYLOADS:
        raise GrafanaRequestError(f"payload name {name[:64]!r} is not one of {sorted(_PAYLOADS)}")
    selection = select({k: v for k, v in payload.items() if k in DIMENSIONS}, ())
    if name in DIMENSIONS:
        selection.include[name] = None
        return _labelled(_scoped_values(queries, since_ms, name, selection))
    if name == "proxy":
        return _labelled(_proxies(queries, selection, start_ms, end_ms))
    return []


_VARIABLES = {"pool": "pool", "pools": "pool", "region": "region", "regions": "region"}


def variable_values(
    queries: StorageQueries,
    payload: Mapping[str, Any],
    *,
    since_ms: int,
    start_ms: int,
    end_ms: int,
) -> list[Json]:
    """``/variable``: ``payload["target"]`` names what to list (``pool``, ``region``,
    ``proxy``), the other keys narrow it (``{"target": "region", "pool": "$pool"}``)."""
    what = str(payload.get("target", "")).strip()
    narrowing = {k: v for k, v in payload.items() if k != "target"}
    unknown = sorted(set(narrowing) - set(DIMENSIONS))
    if unknown:
        raise GrafanaRequestError(f"variable payload key {unknown[0][:64]!r}: pool or region")
    selection = select(narrowing, ())
    if what in _VARIABLES:
        dimension = _VARIABLES[what]
        selection.include[dimension] = None
        values = _scoped_values(queries, since_ms, dimension, selection)
    elif what in ("proxy", "proxies"):
        values = _proxies(queries, selection, start_ms, end_ms)
    else:
        raise GrafanaRequestError(
            f"variable target {what[:64]!r}: one of pool, region, proxy "
            '(e.g. {"target": "region", "pool": "$pool"})'
        )
    return [{"__text": v, "__value": v} for v in values]


def tag_keys() -> list[Json]:
    """The ad-hoc filter keys."""
    return [{"type": "string", "text": d} for d in DIMENSIONS]


def tag_values(
    queries: StorageQueries, key: str, filters: Iterable[AdHocFilter], *, since_ms: int
) -> list[Json]:
    """The stored values of ad-hoc key ``key``, narrowed by the other filters."""
    if key not in DIMENSIONS:
        raise GrafanaRequestError(f"tag key {key[:64]!r}: not one of {', '.join(DIMENSIONS)}")
    selection = select({}, [f for f in filters if f.key != key])
    return [{"text": v} for v in _scoped_values(queries, since_ms, key, selection)]
