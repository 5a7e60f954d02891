"""Decoding columnar envelopes (schema v2, :mod:`schemas.wire_columns`) into numpy columns.

Decoding is total, as for v1: any bytes give a :class:`ColumnBatch` or a :class:`DecodeError`
naming the field (``$.columns.region[17]``) and the reason (a type or range, a column whose
length is not ``count``, an index outside its dictionary, a private label in a dictionary).
:func:`decode_any` accepts all three shapes of record: a v2 envelope, a v1 envelope, or one bare
event. Needs numpy (the ``server`` extra; the light install's modules do not import this one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from schemas.errors import DecodeError
from schemas.events import (
    MAX_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_LATENCY_MS,
    MAX_RECORD_BYTES,
    MAX_TS_MS,
    Outcome,
)
from schemas.wire import (
    WireBatch,
    WireEvent,
    check_domains,
    check_label,
    check_labels,
    check_proxy_ids,
    decode_envelope_or_event,
    decode_with,
)
from schemas.wire_columns import WireColumnBatch

__all__ = ["OUTCOME_ORDER", "ColumnBatch", "DecodeError", "decode_any", "decode_columns"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

OUTCOME_ORDER: tuple[Outcome, ...] = tuple(Outcome)
"""The outcome codes of a decoded :class:`ColumnBatch` (``outcome[i]`` indexes this tuple)."""
_OUTCOME_CODE = {outcome: i for i, outcome in enumerate(OUTCOME_ORDER)}


@dataclass(frozen=True, slots=True, eq=False)
class ColumnBatch:
    """A decoded v2 envelope: numpy columns, label codes into the dictionaries.

    ``outcome`` codes index :data:`OUTCOME_ORDER` (whatever order the envelope's dictionary
    had); ``proxy_id`` and ``target_domain`` are -1 for none, ``status_code`` 0 for none.
    """

    batch_id: str
    source_host_name: str
    pool_name: str
    sent_ms: int
    event_id: list[str]
    ts_ms: Int64Array
    latency_ms: Float64Array
    pool: Int64Array
    region: Int64Array
    source_host: Int64Array
    outcome: Int64Array
    proxy_id: Int64Array
    status_code: Int64Array
    bytes_in: Int64Array
    bytes_out: Int64Array
    attempts: Int64Array
    target_domain: Int64Array
    pools: list[str]
    regions: list[str]
    source_hosts: list[str]
    proxy_ids: list[str]
    target_domains: list[str]

    def __len__(self) -> int:
        return len(self.event_id)

    def event(self, i: int) -> WireEvent:
        """Row ``i`` as a v1 event (for the few rows that leave the columns: late, refused)."""
        proxy = int(self.proxy_id[i])
        domain = int(self.target_domain[i])
        status = int(self.status_code[i])
        return WireEvent(
            event_id=self.event_id[i],
            ts_ms=int(self.ts_ms[i]),
            pool=self.pools[self.pool[i]],
            region=self.regions[self.region[i]],
            outcome=OUTCOME_ORDER[self.outcome[i]],
            latency_ms=float(self.latency_ms[i]),
            source_host=self.source_hosts[self.source_host[i]],
            proxy_id=None if proxy < 0 else self.proxy_ids[proxy],
            status_code=None if status == 0 else status,
            bytes_in=int(self.bytes_in[i]),
            bytes_out=int(self.bytes_out[i]),
            attempts=int(self.attempts[i]),
            target_domain=None if domain < 0 else self.target_domains[domain],
        )

    def events(self) -> list[WireEvent]:
        """Every row as a v1 event (slow: for raw-event storage and the v1-only consumers)."""
        return [self.event(i) for i in range(len(self.event_id))]


_decoder = msgspec.json.Decoder(WireColumnBatch)
_COLUMNS_MARK = b'"columns"'
_top_level_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])


_INT_RANGES: dict[str, tuple[int, int]] = {
    "ts_ms": (0, MAX_TS_MS),
    "pool": (0, MAX_EVENTS_PER_BATCH),
    "region": (0, MAX_EVENTS_PER_BATCH),
    "source_host": (0, MAX_EVENTS_PER_BATCH),
    "outcome": (0, MAX_EVENTS_PER_BATCH),
    "proxy_id": (-1, MAX_EVENTS_PER_BATCH),
    "target_domain": (-1, MAX_EVENTS_PER_BATCH),
    "status_code": (0, 599),
    "bytes_in": (0, MAX_BYTES),
    "bytes_out": (0, MAX_BYTES),
    "attempts": (1, 1000),
}
"""The ranges the schema gives array columns (:mod:`schemas.wire_columns`), for packed ones."""
_INT64_LE = np.dtype("<i8")
_FLOAT64_LE = np.dtype("<f8")


def _unpacked(name: str, packed: str, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """A packed column (hex of ``count`` little-endian 8-byte values) as an array."""
    if len(packed) != count * 16:
        raise DecodeError(
            f"invalid record: {len(packed)} hex digits, expected 16 x `count` = {count * 16} - "
            f"at `$.columns.{name}`"
        )
    try:
        raw = bytes.fromhex(packed)
    except ValueError as exc:
        raise DecodeError(
            f"invalid record: a packed column is not hexadecimal ({exc}) - at `$.columns.{name}`"
        ) from exc
    if len(raw) != count * 8:  # whitespace, which fromhex skips, took the place of digits
        raise DecodeError(
            f"invalid record: {len(raw)} packed bytes, expected 8 x `count` = {count * 8} - "
            f"at `$.columns.{name}`"
        )
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)


def _out_of_range(name: str, bad: npt.NDArray[np.bool_], expected: str) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise DecodeError(f"invalid record: Expected {expected} - at `$.columns.{name}[{i}]`")


def _column(
    name: str, values: list[int] | str | None, count: int, default: int
) -> npt.NDArray[np.int64]:
    if values is None:
        return np.full(count, default, dtype=np.int64)
    if isinstance(values, str):
        column = _unpacked(name, values, count, _INT64_LE)
        low, high = _INT_RANGES[name]
        _out_of_range(name, (column < low) | (column > high), f"`int` within [{low}, {high}]")
        return column
    if len(values) != count:
        raise DecodeError(
            f"invalid record: {len(values)} values, expected `count` = {count} - "
            f"at `$.columns.{name}`"
        )
    return np.array(values, dtype=np.int64)


def _latencies(values: list[float] | str, count: int) -> npt.NDArray[np.float64]:
    if isinstance(values, str):
        column = _unpacked("latency_ms", values, count, _FLOAT64_LE)
        # NaN fails both comparisons, so it is refused too.
        inside = (column >= 0.0) & (column <= MAX_LATENCY_MS)
        _out_of_range("latency_ms", ~inside, f"`float` within [0.0, {MAX_LATENCY_MS}]")
        return column
    if len(values) != count:
        raise DecodeError(
            f"invalid record: {len(values)} values, expected `count` = {count} - "
            "at `$.columns.latency_ms`"
        )
    return np.array(values, dtype=np.float64)


def _codes(
    name: str, values: list[int] | str | None, count: int, dictionary: list[str] | list[Outcome]
) -> npt.NDArray[np.int64]:
    """A label column, every index checked against its dictionary."""
    codes = _column(name, values, count, -1)
    size = len(dictionary)
    bad = codes >= size
    if values is not None and bad.any():
        i = int(np.argmax(bad))
        raise DecodeError(
            f"invalid record: index {int(codes[i])} is not in `$.dictionaries.{name}` "
            f"({size} entries) - at `$.columns.{name}[{i}]`"
        )
    return codes


def _checked(wire: WireColumnBatch) -> ColumnBatch:
    count = wire.count
    cols = wire.columns
    dicts = wire.dictionaries
    check_label(wire.pool, "$.pool")
    check_label(wire.source_host, "$.source_host")
    check_labels(dicts.pool, "$.dictionaries.pool")
    check_labels(dicts.region, "$.dictionaries.region")
    check_labels(dicts.source_host, "$.dictionaries.source_host")
    check_proxy_ids(dicts.proxy_id, "$.dictionaries.proxy_id")
    check_domains(dicts.target_domain, "$.dictionaries.target_domain")
    if len(cols.event_id) != count:
        raise DecodeError(
            f"invalid record: {len(cols.event_id)} values, expected `count` = {count} - "
            "at `$.columns.event_id`"
        )
    ts_ms = _column("ts_ms", cols.ts_ms, count, 0)
    latency_ms = _latencies(cols.latency_ms, count)
    required = {"pool": dicts.pool, "region": dicts.region, "source_host": dicts.source_host}
    codes = {name: _codes(name, getattr(cols, name), count, d) for name, d in required.items()}
    outcome_local = _codes("outcome", cols.outcome, count, dicts.outcome)
    translate = np.array([_OUTCOME_CODE[o] for o in dicts.outcome] or [0], dtype=np.int64)
    proxy_id = _codes("proxy_id", cols.proxy_id, count, dicts.proxy_id)
    target_domain = _codes("target_domain", cols.target_domain, count, dicts.target_domain)
    status_code = _column("status_code", cols.status_code, count, 0)
    bad_status = (status_code > 0) & (status_code < 100)
    if bad_status.any():
        i = int(np.argmax(bad_status))
        raise DecodeError(
            f"invalid record: Expected `int` equal to 0 (no status) or within [100, 599] - "
            f"at `$.columns.status_code[{i}]`"
        )
    return ColumnBatch(
        batch_id=wire.batch_id,
        source_host_name=wire.source_host,
        pool_name=wire.pool,
        sent_ms=wire.sent_ms,
        event_id=cols.event_id,
        ts_ms=ts_ms,
        latency_ms=latency_ms,
        pool=codes["pool"],
        region=codes["region"],
        source_host=codes["source_host"],
        outcome=translate[outcome_local],
        proxy_id=proxy_id,
        status_code=status_code,
        bytes_in=_column("bytes_in", cols.bytes_in, count, 0),
        bytes_out=_column("bytes_out", cols.bytes_out, count, 0),
        attempts=_column("attempts", cols.attempts, count, 1),
        target_domain=target_domain,
        pools=dicts.pool,
        regions=dicts.region,
        source_hosts=dicts.source_host,
        proxy_ids=dicts.proxy_id,
        target_domains=dicts.target_domain,
    )


def decode_columns(data: bytes) -> ColumnBatch:
    """Decode a v2 envelope; raises :class:`DecodeError` naming the field and the reason."""
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError(
            f"record too large: {len(data)} bytes, at most {MAX_RECORD_BYTES} are decoded"
        )
    return _checked(decode_with(_decoder, data))


def _has_columns(data: bytes) -> bool:
    try:
        top = _top_level_decoder.decode(data)
    except Exception:  # not even a JSON object: either error says so
        return True
    return "columns" in top


def decode_any(data: bytes) -> ColumnBatch | WireBatch | WireEvent:
    """Decode one record of any schema version: a v2 envelope, a v1 envelope or a bare event.

    Raises :class:`DecodeError` and nothing else. A record with a ``"columns"`` member is a v2
    envelope (the cheap byte test is confirmed on failure, as for v1's ``"events"``).
    """
    if _COLUMNS_MARK in data and len(data) <= MAX_RECORD_BYTES:
        try:
            return decode_columns(data)
        except DecodeError:
            if _has_columns(data):
                raise
    return decode_envelope_or_event(data)
