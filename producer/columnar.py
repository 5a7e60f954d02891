"""The columnar envelope encoder (schema version 2, :mod:`schemas.wire_columns`).

Turns a list of events into one v2 envelope: one array per field, pools, regions, hosts, outcomes,
proxy ids and domains each written once in a dictionary and referenced by index. The worker
counts such an envelope with array operations (``WindowAggregator.add_columns``); v1 envelopes
stay accepted, so hosts can switch one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import Outcome
from schemas.wire import WireEvent
from schemas.wire_columns import WireColumnBatch, WireColumns, WireDictionaries, encode_columns

__all__ = ["columnar_batch", "encode_columnar"]


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


def columnar_batch(
    events: Sequence[WireEvent], *, batch_id: str, source_host: str, pool: str, sent_ms: int
) -> WireColumnBatch:
    """The v2 envelope of ``events`` (at least one), as a struct."""
    pools, regions, hosts, proxies, domains = (_Interner() for _ in range(5))
    outcomes = _Interner()
    return WireColumnBatch(
        schema_version=2,
        batch_id=batch_id,
        source_host=source_host,
        pool=pool,
        sent_ms=sent_ms,
        count=len(events),
        columns=WireColumns(
            event_id=[ev.event_id for ev in events],
            ts_ms=[ev.ts_ms for ev in events],
            latency_ms=[ev.latency_ms for ev in events],
            pool=[pools.code(ev.pool) for ev in events],
            region=[regions.code(ev.region) for ev in events],
            source_host=[hosts.code(ev.source_host) for ev in events],
            outcome=[outcomes.code(ev.outcome) for ev in events],
            proxy_id=[proxies.optional(ev.proxy_id) for ev in events],
            status_code=[ev.status_code or 0 for ev in events],
            bytes_in=[ev.bytes_in for ev in events],
            bytes_out=[ev.bytes_out for ev in events],
            attempts=[ev.attempts for ev in events],
            target_domain=[domains.optional(ev.target_domain) for ev in events],
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
    events: Sequence[WireEvent], *, batch_id: str, source_host: str, pool: str, sent_ms: int
) -> bytes:
    """The v2 envelope of ``events`` (at least one) as JSON bytes."""
    return encode_columns(
        columnar_batch(
            events, batch_id=batch_id, source_host=source_host, pool=pool, sent_ms=sent_ms
        )
    )
