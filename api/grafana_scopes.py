"""Which pools, regions and proxies a Grafana query means: its payload and ad-hoc filters.

A payload selects with ``pool``, ``region`` and ``proxy`` (a value, a list, or all when absent)
and splits with ``group_by`` (``pool``, ``region`` or ``pool,region``); ad-hoc filters narrow
with ``=`` / ``!=`` (and Grafana 11's one-of ``=|`` / ``!=|``) on ``pool`` and ``region``.
The result is a list of scopes, each read on its own through the query layer: a selection that
leaves several pools (or regions) is answered one series per pool, never by adding rates
across scopes. An unknown key or operator is a :class:`GrafanaRequestError` naming it (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.grafana_model import AdHocFilter, payload_values
from schemas.events import LABEL_PATTERN, PROXY_ID_PATTERN

__all__ = [
    "DIMENSIONS",
    "GrafanaRequestError",
    "Scope",
    "Selection",
    "known_values",
    "select",
]

DIMENSIONS = ("pool", "region")
"""The ad-hoc filter keys (``/tag-keys``)."""

MAX_SCOPES = 100
"""At most this many series (or scopes) per target."""

_OPERATORS = ("=", "!=", "=|", "!=|")


class GrafanaRequestError(ValueError):
    """A query Grafana sent that cannot be answered as asked (a 400 problem; poison)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One pool x region (None: all) of a query, and the name suffix of its series."""

    pool: str | None = None
    region: str | None = None

    def labels(self) -> str:
        parts = [f"{k}={v}" for k, v in (("pool", self.pool), ("region", self.region)) if v]
        return "{" + ",".join(parts) + "}" if parts else ""


@dataclass(slots=True)
class Selection:
    """What a payload and the ad-hoc filters select, before the known scopes are looked up."""

    include: dict[str, set[str] | None] = field(
        default_factory=lambda: dict.fromkeys(DIMENSIONS, None)
    )
    exclude: dict[str, set[str]] = field(default_factory=lambda: {d: set() for d in DIMENSIONS})
    group_by: tuple[str, ...] = ()
    proxies: list[str] | None = None

    def narrow(self, dimension: str, values: Iterable[str]) -> None:
        wanted = set(values)
        current = self.include[dimension]
        self.include[dimension] = wanted if current is None else current & wanted

    def single(self, dimension: str) -> str | None:
        """The one value ``dimension`` is restricted to, or None (all); several -> error."""
        values = self.include[dimension]
        if values is None and not self.exclude[dimension]:
            return None
        if values is not None and len(values - self.exclude[dimension]) == 1:
            return next(iter(values - self.exclude[dimension]))
        raise GrafanaRequestError(f"payload {dimension}: this target takes one {dimension}")

    @property
    def needs_known(self) -> bool:
        """Whether resolving needs the stored pools and regions (a split or an exclusion)."""
        return bool(self.group_by) or any(self.exclude.values())

    def scopes(self, known: Callable[[], list[tuple[str, str]]]) -> list[Scope]:
        """The scopes to read (``known``: the stored (pool, region) pairs, read when needed).

        Pools x regions are crossed where both are listed, keeping the pairs with data (one
        pool and one region asked for by name are kept even without).
        """
        stored: list[tuple[str, str]] | None = None

        def pairs() -> list[tuple[str, str]]:
            nonlocal stored
            if stored is None:
                stored = known()
            return stored

        per_dim: dict[str, list[str] | None] = {}
        for i, dimension in enumerate(DIMENSIONS):
            include, exclude = self.include[dimension], self.exclude[dimension]
            if include is None and not exclude and dimension not in self.group_by:
                per_dim[dimension] = None
                continue
            base = include if include is not None else {p[i] for p in pairs()}
            per_dim[dimension] = sorted(base - exclude)
        pools, regions = per_dim["pool"], per_dim["region"]
        if pools is not None and regions is not None:
            if len(pools) == 1 and len(regions) == 1 and not self.needs_known:
                scopes = [Scope(pools[0], regions[0])]
            else:
                with_data = set(pairs())
                scopes = [Scope(p, r) for p in pools for r in regions if (p, r) in with_data]
        elif pools is not None:
            scopes = [Scope(pool=p) for p in pools]
        elif regions is not None:
            scopes = [Scope(region=r) for r in regions]
        else:
            scopes = [Scope()]
        if len(scopes) > MAX_SCOPES:
            raise GrafanaRequestError(
                f"the selection makes {len(scopes)} series; at most {MAX_SCOPES}: narrow it"
            )
        return scopes


def _labels(key: str, values: list[str], pattern: str) -> list[str]:
    for value in values:
        if re.fullmatch(pattern, value) is None:
            raise GrafanaRequestError(f"{key}: {value[:80]!r} is not a valid name")
    return values


def _payload_dimension(payload: Mapping[str, Any], key: str) -> list[str] | None:
    try:
        values = payload_values(payload.get(key))
    except ValueError as exc:
        raise GrafanaRequestError(f"payload {key}: {exc}") from exc
    return None if values is None else _labels(f"payload {key}", values, LABEL_PATTERN)


def _group_by(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    dims = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
    for dim in dims:
        if dim not in DIMENSIONS:
            raise GrafanaRequestError(f"payload group_by: {dim!r} is not one of pool, region")
    return dims


def select(
    payload: Mapping[str, Any], filters: Iterable[AdHocFilter], *, proxies: bool = False
) -> Selection:
    """The :class:`Selection` of a target's ``payload`` and the request's ad-hoc ``filters``."""
    selection = Selection(group_by=_group_by(payload.get("group_by")))
    for dimension in DIMENSIONS:
        values = _payload_dimension(payload, dimension)
        if values is not None:
            selection.narrow(dimension, values)
    if proxies:
        try:
            values = payload_values(payload.get("proxy"))
        except ValueError as exc:
            raise GrafanaRequestError(f"payload proxy: {exc}") from exc
        if values is not None:
            selection.proxies = _labels("payload proxy", values, PROXY_ID_PATTERN)
    for f in filters:
        if f.key not in DIMENSIONS:
            raise GrafanaRequestError(
                f"filter key {f.key[:64]!r}: not one of {', '.join(DIMENSIONS)}"
            )
        if f.operator not in _OPERATORS:
            raise GrafanaRequestError(
                f"filter operator {f.operator!r} (key {f.key}): supported are "
                + ", ".join(_OPERATORS)
            )
        values = f.values if f.operator.endswith("|") and f.values is not None else [f.value]
        values = _labels(f"filter {f.key}", values, LABEL_PATTERN)
        if f.operator.startswith("!"):
            selection.exclude[f.key].update(values)
        else:
            selection.narrow(f.key, values)
    return selection


def known_values(pairs: Iterable[tuple[str, str]], dimension: str) -> list[str]:
    """The distinct values of ``dimension`` among stored (pool, region) pairs, sorted."""
    index = DIMENSIONS.index(dimension)
    return sorted({pair[index] for pair in pairs})
