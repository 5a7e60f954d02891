"""The hot-path codec for request events and batch envelopes (msgspec).

The structs mirror :class:`schemas.events.RequestEvent` and :class:`schemas.events.EventBatch`
field for field (a test checks it). Decoding validates types, ranges and patterns in one pass.

Decoding is total: whatever the bytes (binary, invalid UTF-8, truncated, huge or deeply nested
documents, numbers beyond 64 bits, ``NaN``), :func:`decode_record` returns events or raises
:class:`DecodeError`, whose message names the field (``$.events[3].latency_ms``) and the reason;
no other exception escapes. What it accepts is storable: every range is the storage's range
(event times up to :data:`schemas.events.MAX_TS_MS`, sizes up to
:data:`schemas.events.MAX_BYTES`), and labels that look like an address, a port, a credential
or a path are refused (:mod:`schemas.privacy`). A duplicated key keeps its last value, as in
most JSON parsers. A record is either an envelope (an object with an ``events`` member) or one
bare event.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

import msgspec

from schemas.errors import DecodeError
from schemas.events import (
    DOMAIN_PATTERN,
    LABEL_PATTERN,
    MAX_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_LATENCY_MS,
    MAX_RECORD_BYTES,
    MAX_TS_MS,
    PROXY_ID_PATTERN,
    Outcome,
)
from schemas.privacy import privacy_reason

__all__ = [
    "DecodeError",
    "WireBatch",
    "WireEvent",
    "check_domains",
    "check_label",
    "check_labels",
    "check_proxy_ids",
    "decode_batch",
    "decode_envelope_or_event",
    "decode_record",
    "decode_with",
    "encode_batch",
    "encode_event",
]

_Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_ProxyId = Annotated[str, msgspec.Meta(min_length=16, max_length=64)]
_Domain = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
_TimeMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_TS_MS)]
_Bytes = Annotated[int, msgspec.Meta(ge=0, le=MAX_BYTES)]


class WireEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One request event (see :class:`schemas.events.RequestEvent`)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts_ms: _TimeMs
    pool: _Label
    region: _Label
    outcome: Outcome
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_LATENCY_MS)]
    source_host: _Label
    proxy_id: _ProxyId | None = None
    status_code: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    bytes_in: _Bytes = 0
    bytes_out: _Bytes = 0
    attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    target_domain: _Domain | None = None
    schema_version: Literal[1] = 1


class WireBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A batch envelope (see :class:`schemas.events.EventBatch`)."""

    batch_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    source_host: _Label
    pool: _Label
    sent_ms: _TimeMs
    events: Annotated[list[WireEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]
    schema_version: Literal[1] = 1


class _PatternCache:
    """Checks strings against a pattern and the privacy rules, remembering the ones that passed
    (bounded).

    msgspec's per-field regex costs ~0.5 us a field; pools, regions, hosts and proxy ids repeat
    endlessly, so a set lookup answers almost every check.
    """

    __slots__ = ("_max_size", "_ok", "_private", "_regex")

    def __init__(self, pattern: str, max_size: int, *, private: bool) -> None:
        self._regex = re.compile(pattern)
        self._ok: set[str] = set()
        self._max_size = max_size
        self._private = private

    def check(self, value: str) -> bool:
        if value in self._ok:
            return True
        if self.reason(value) is not None:
            return False
        if len(self._ok) >= self._max_size:
            self._ok.clear()
        self._ok.add(value)
        return True

    def known(self, values: list[str]) -> bool:
        """Whether every value passed before (one set inclusion)."""
        return self._ok.issuperset(values)

    def reason(self, value: str) -> str | None:
        """Why ``value`` is refused, or None (not cached: for the error path)."""
        if self._regex.match(value) is None:
            return f"Expected `str` matching regex {self._regex.pattern!r}"
        if self._private:
            return privacy_reason(value)
        return None


_labels = _PatternCache(LABEL_PATTERN, 65_536, private=True)
_proxy_ids = _PatternCache(PROXY_ID_PATTERN, 1_048_576, private=False)
_domains = _PatternCache(DOMAIN_PATTERN, 65_536, private=True)


def _refused(cache: _PatternCache, path: str, value: str) -> DecodeError:
    return DecodeError(f"invalid record: {cache.reason(value)} - at `{path}`")


def _check_patterns(events: list[WireEvent], prefix: str | None) -> None:
    """Patterns and privacy of each event's strings; ``prefix`` is the path of the events list
    (``$.events``), or None for one bare event (``$``)."""
    label_ok = _labels.check
    proxy_ok = _proxy_ids.check
    for i, ev in enumerate(events):
        at = "$" if prefix is None else f"{prefix}[{i}]"
        if not (label_ok(ev.pool) and label_ok(ev.region) and label_ok(ev.source_host)):
            for name in ("pool", "region", "source_host"):
                if not label_ok(getattr(ev, name)):
                    raise _refused(_labels, f"{at}.{name}", getattr(ev, name))
        if ev.proxy_id is not None and not proxy_ok(ev.proxy_id):
            raise _refused(_proxy_ids, f"{at}.proxy_id", ev.proxy_id)
        if ev.target_domain is not None and not _domains.check(ev.target_domain):
            raise _refused(_domains, f"{at}.target_domain", ev.target_domain)


def _check_all(cache: _PatternCache, values: list[str], path: str) -> None:
    """Check every value of a list; a set inclusion answers when all passed before."""
    if cache.known(values):
        return
    for i, value in enumerate(values):
        if not cache.check(value):
            raise _refused(cache, f"{path}[{i}]", value)


def check_label(value: str, path: str) -> None:
    """Raise :class:`DecodeError` at ``path`` unless ``value`` is a valid, non-private label."""
    if not _labels.check(value):
        raise _refused(_labels, path, value)


def check_labels(values: list[str], path: str) -> None:
    """Raise :class:`DecodeError` at ``path[i]`` unless every value is a valid, non-private
    label."""
    _check_all(_labels, values, path)


def check_proxy_ids(values: list[str], path: str) -> None:
    """Raise :class:`DecodeError` at ``path[i]`` unless every value is a proxy id."""
    _check_all(_proxy_ids, values, path)


def check_domains(values: list[str], path: str) -> None:
    """Raise :class:`DecodeError` at ``path[i]`` unless every value is a bare, non-private
    domain."""
    _check_all(_domains, values, path)


_batch_decoder = msgspec.json.Decoder(WireBatch)
_event_decoder = msgspec.json.Decoder(WireEvent)
_top_level_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()
_ENVELOPE_MARK = b'"events"'


_T = TypeVar("_T")


def decode_with(decoder: msgspec.json.Decoder[_T], data: bytes) -> _T:
    """Run ``decoder``; every failure becomes a :class:`DecodeError` naming field and reason."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid record: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(f"malformed JSON: a string is not valid UTF-8 ({exc.reason})") from exc
    except (RecursionError, OverflowError, ValueError, TypeError) as exc:
        raise DecodeError(f"malformed JSON: {type(exc).__name__}") from exc


def _is_envelope(data: bytes) -> bool:
    """Whether a document that failed to decode is an envelope (for the error to report)."""
    try:
        top = _top_level_decoder.decode(data)
    except Exception:  # not even a JSON object: either error says so
        return True
    return "events" in top


def decode_envelope_or_event(data: bytes) -> WireBatch | WireEvent:
    """Decode one record into the envelope or the bare event it is; raises :class:`DecodeError`.

    The cheap test for an envelope (the bytes ``"events"``) can be fooled by a bare event that
    has that word as a value: such a record is decoded again as an event before it is refused.
    """
    if len(data) > MAX_RECORD_BYTES:
        raise DecodeError(
            f"record too large: {len(data)} bytes, at most {MAX_RECORD_BYTES} are decoded"
        )
    if _ENVELOPE_MARK in data:
        try:
            return decode_batch(data)
        except DecodeError:
            if _is_envelope(data):
                raise
            # Not an envelope after all: the event's own error names the field at fault.
    return _decode_event(data)


def _decode_event(data: bytes) -> WireEvent:
    event = decode_with(_event_decoder, data)
    _check_patterns([event], None)
    return event


def decode_record(data: bytes) -> list[WireEvent]:
    """Decode one record (an envelope or a bare event) into its events.

    Raises :class:`DecodeError` naming the offending field and the reason, and nothing else.
    """
    decoded = decode_envelope_or_event(data)
    if isinstance(decoded, WireBatch):
        return decoded.events
    return [decoded]


def decode_batch(data: bytes) -> WireBatch:
    """Decode an envelope; raises :class:`DecodeError`."""
    batch = decode_with(_batch_decoder, data)
    for name, value in (("pool", batch.pool), ("source_host", batch.source_host)):
        if not _labels.check(value):
            raise _refused(_labels, f"$.{name}", value)
    _check_patterns(batch.events, "$.events")
    return batch


def encode_batch(batch: WireBatch) -> bytes:
    """Encode an envelope to JSON bytes."""
    return _encoder.encode(batch)


def encode_event(event: WireEvent) -> bytes:
    """Encode a bare event to JSON bytes."""
    return _encoder.encode(event)
