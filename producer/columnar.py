"""The columnar envelope encoder (schema version 2, :mod:`schemas.wire_columns`).

Turns a list of events into one v2 envelope: one array per field, pools, regions, hosts, outcomes,
proxy ids and domains each written once in a dictionary and referenced by index. The worker
counts such an envelope with array operations (``WindowAggregator.add_columns``); v1 envelopes
stay accepted, so hosts can switch one at a time.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from typing import TypeVar

from schemas.events import Outcome
from schemas.wire import WireEvent
from schemas.wire_columns import WireColumnBatch, WireColumns, WireDictionaries, encode_columns

__all__ = ["columnar_batch", "encode_columnar"]

_BIG_ENDIAN = sys.byteorder == "big"
_T = TypeVar("_T")


def _as_is(values: list[_T]) -> list[_T]:
    return values


class _Interner:
    """Index of each distinct value, in order of first appearance."""

    __slots__ = ("index", "values")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, value: str) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code

    def optional(self, value: str | None) -> int:
        return -1 if value is None else self.code(value)


def _packed(values: list[int] | list[float], typecode: str) -> str:
    """A packed column: hex of the values as little-endian 8-byte values (``typecode`` "q":
    signed integers, "d": IEEE 754 doubles)."""
    packed = array(typecode, values)
    if _BIG_ENDIAN:  # pragma: no cover - little-endian hosts only here
        packed.byteswap()
    return packed.tobytes().hex()


def _packed_ints(values: list[int]) -> str:
    return _packed(values, "q")


def _packed_floats(values: list[float]) -> str:
    return _packed(values, "d")


def columnar_batch(
    events: Sequence[WireEvent],
    *,
    batch_id: str,
    source_host: str,
    pool: str,
    sent_ms: int,
    packed: bool = True,
) -> WireColumnBatch:
    """The v2 envelope of ``events`` (at least one), as a struct; numeric columns packed
    (hex of little-endian 8-byte values) unless ``packed`` is False (JSON arrays)."""
    pools, regions, hosts, proxies, domains = (_Interner() for _ in range(5))
    outcomes = _Interner()
    ints: Callable[[list[int]], list[int] | str] = _packed_ints if packed else _as_is
    floats: Callable[[list[float]], list[float] | str] = _packed_floats if packed else _as_is
    return WireColumnBatch(
        schema_version=2,
        batch_id=batch_id,
        source_host=source_host,
        pool=pool,
        sent_ms=sent_ms,
        count=len(events),
        columns=WireColumns(
            event_id=[ev.event_id for ev in events],
            ts_ms=ints([ev.ts_ms for ev in events]),
            latency_ms=floats([ev.latency_ms for ev in events]),
            pool=ints([pools.code(ev.pool) for ev in events]),
            region=ints([regions.code(ev.region) for ev in events]),
            source_host=ints([hosts.code(ev.source_host) for ev in events]),
            outcome=ints([outcomes.code(ev.outcome) for ev in events]),
            proxy_id=ints([proxies.optional(ev.proxy_id) for ev in events]),
            status_code=ints([ev.status_code or 0 for ev in events]),
            bytes_in=ints([ev.bytes_in for ev in events]),
            bytes_out=ints([ev.bytes_out for ev in events]),
            attempts=ints([ev.attempts for ev in events]),
            target_domain=ints([domains.optional(ev.target_domain) for ev in events]),
        ),
        dictionaries=WireDictionaries(
            pool=pools.values,
            region=regions.values,
            source_host=hosts.values,
            outcome=[Outcome(o) for o in outcomes.values],
            proxy_id=proxies.values,
            target_domain=domains.values,
        ),
    )


def encode_columnar(
    events: Sequence[WireEvent],
    *,
    batch_id: str,
    source_host: str,
    pool: str,
    sent_ms: int,
    packed: bool = True,
) -> bytes:
    """The v2 envelope of ``events`` (at least one) as JSON bytes (see :func:`columnar_batch`)."""
    return encode_columns(
        columnar_batch(
            events,
            batch_id=batch_id,
            source_host=source_host,
            pool=pool,
            sent_ms=sent_ms,
            packed=packed,
        )
    )
