"""The hot-path codec for request events and batch envelopes (msgspec).

The structs mirror :class:`schemas.events.RequestEvent` and :class:`schemas.events.EventBatch`
field for field (a test checks it). Decoding validates types, ranges and patterns in one pass and
raises :class:`DecodeError`, whose message names the field (``$.events[3].latency_ms``) and the
reason. A record is either an envelope (it has an ``events`` member) or one bare event.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from schemas.errors import DecodeError
from schemas.events import (
    DOMAIN_PATTERN,
    LABEL_PATTERN,
    MAX_EVENTS_PER_BATCH,
    MAX_LATENCY_MS,
    PROXY_ID_PATTERN,
    Outcome,
)

__all__ = [
    "DecodeError",
    "WireBatch",
    "WireEvent",
    "decode_batch",
    "decode_record",
    "encode_batch",
    "encode_event",
]

_Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_ProxyId = Annotated[str, msgspec.Meta(min_length=16, max_length=64)]
_Domain = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


class WireEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One request event (see :class:`schemas.events.RequestEvent`)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts_ms: Annotated[int, msgspec.Meta(ge=0)]
    pool: _Label
    region: _Label
    outcome: Outcome
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_LATENCY_MS)]
    source_host: _Label
    proxy_id: _ProxyId | None = None
    status_code: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    bytes_in: Annotated[int, msgspec.Meta(ge=0)] = 0
    bytes_out: Annotated[int, msgspec.Meta(ge=0)] = 0
    attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    target_domain: _Domain | None = None
    schema_version: Literal[1] = 1


class WireBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A batch envelope (see :class:`schemas.events.EventBatch`)."""

    batch_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    source_host: _Label
    pool: _Label
    sent_ms: Annotated[int, msgspec.Meta(ge=0)]
    events: Annotated[list[WireEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]
    schema_version: Literal[1] = 1


class _PatternCache:
    """Checks strings against a pattern, remembering the ones that passed (bounded).

    msgspec's per-field regex costs ~0.5 us a field; pools, regions, hosts and proxy ids repeat
    endlessly, so a set lookup answers almost every check.
    """

    __slots__ = ("_max_size", "_ok", "_regex")

    def __init__(self, pattern: str, max_size: int) -> None:
        self._regex = re.compile(pattern)
        self._ok: set[str] = set()
        self._max_size = max_size

    def check(self, value: str) -> bool:
        if value in self._ok:
            return True
        if self._regex.match(value) is None:
            return False
        if len(self._ok) >= self._max_size:
            self._ok.clear()
        self._ok.add(value)
        return True


_labels = _PatternCache(LABEL_PATTERN, 65_536)
_proxy_ids = _PatternCache(PROXY_ID_PATTERN, 1_048_576)
_domains = _PatternCache(DOMAIN_PATTERN, 65_536)


def _pattern_error(path: str, value: str, pattern: str) -> DecodeError:
    return DecodeError(f"invalid record: Expected `str` matching regex {pattern!r} - at `{path}`")


def _check_patterns(events: list[WireEvent], prefix: str) -> None:
    label_ok = _labels.check
    proxy_ok = _proxy_ids.check
    for i, ev in enumerate(events):
        if not (label_ok(ev.pool) and label_ok(ev.region) and label_ok(ev.source_host)):
            for name in ("pool", "region", "source_host"):
                if not label_ok(getattr(ev, name)):
                    raise _pattern_error(f"{prefix}[{i}].{name}", getattr(ev, name), LABEL_PATTERN)
        if ev.proxy_id is not None and not proxy_ok(ev.proxy_id):
            raise _pattern_error(f"{prefix}[{i}].proxy_id", ev.proxy_id, PROXY_ID_PATTERN)
        if ev.target_domain is not None and not _domains.check(ev.target_domain):
            raise _pattern_error(f"{prefix}[{i}].target_domain", ev.target_domain, DOMAIN_PATTERN)


_batch_decoder = msgspec.json.Decoder(WireBatch)
_event_decoder = msgspec.json.Decoder(WireEvent)
_encoder = msgspec.json.Encoder()


def decode_record(data: bytes) -> list[WireEvent]:
    """Decode one record (an envelope or a bare event) into its events.

    Raises :class:`DecodeError` naming the offending field and the reason.
    """
    if b'"events"' in data:
        batch = decode_batch(data)
        return batch.events
    try:
        event = _event_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid record: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    events = [event]
    _check_patterns(events, "$")
    return events


def decode_batch(data: bytes) -> WireBatch:
    """Decode an envelope; raises :class:`DecodeError`."""
    try:
        batch = _batch_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid record: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    if not (_labels.check(batch.pool) and _labels.check(batch.source_host)):
        name = "pool" if not _labels.check(batch.pool) else "source_host"
        raise _pattern_error(f"$.{name}", getattr(batch, name), LABEL_PATTERN)
    _check_patterns(batch.events, "$.events")
    return batch


def encode_batch(batch: WireBatch) -> bytes:
    """Encode an envelope to JSON bytes."""
    return _encoder.encode(batch)


def encode_event(event: WireEvent) -> bytes:
    """Encode a bare event to JSON bytes."""
    return _encoder.encode(event)
