"""One HTTP ingest body -> the validated events it carries and a refusal per bad event.

The body is what one Kafka record is: a columnar envelope (schema v2,
:mod:`schemas.wire_columns`), a batch envelope (``schemas.wire.WireBatch`` JSON) or one bare
event. Validation is :func:`schemas.wire.decode_record` itself, so HTTP accepts exactly
what the stream accepts. An envelope that decodes whole takes the fast path (one decode). One
that does not is split: each event is decoded on its own, the bad ones are refused with their
index and the reason (``$.events[3].latency_ms ...``), and the good ones are put back into an
envelope with the original header, which is decoded again (so a bad header is caught by the same
rules) and becomes the record stored and aggregated. A body that is not JSON, not an object, or
an envelope whose header is bad is refused as a whole (:attr:`Intake.record_error`).

A v2 envelope (a body with a ``columns`` member, as :func:`schemas.column_batch.decode_any`
tells them apart) is validated by :func:`schemas.column_batch.decode_columns`, as the worker
validates it, and taken or refused whole: its rows are not objects that could be refused one by
one, and the reason names the field (``index 9 is not in $.dictionaries.region (2 entries) - at
$.columns.region[17]``).

The identity of a record for deduplication is ``(source_host, batch_id)`` for an envelope (v1
or v2) and
``(source_host, "event:" + event_id)`` for a bare event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from schemas.column_batch import ColumnBatch, decode_columns
from schemas.errors import DecodeError
from schemas.wire import WireEvent, decode_record

__all__ = ["Intake", "Refusal", "read_intake"]

_MAX_IDENT_CHARS = 128


class _Head(msgspec.Struct):
    """The members that say what a record is; everything else is left to decode_record."""

    batch_id: str | None = None
    source_host: str | None = None
    event_id: str | None = None
    events: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    columns: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_head_decoder = msgspec.json.Decoder(_Head)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused event (``index`` in the envelope's events) or record (``index`` None)."""

    index: int | None
    reason: str


@dataclass(slots=True)
class Intake:
    """What one body holds: good events as a list (v1, bare event) or as columns (v2)."""

    events: list[WireEvent] = field(default_factory=list)
    columns: ColumnBatch | None = None  # a v2 envelope that decoded (``events`` stays empty)
    record: bytes = b""  # the good events as one record (the body itself when all were good)
    pool: str = ""
    source_host: str = ""
    batch_id: str = ""  # the record's dedup identity within its source host
    envelope: bool = False
    event_count: int = 0  # events in the body, good and bad
    refused: list[Refusal] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many good events the record carries (0: nothing to take)."""
        return len(self.events) if self.columns is None else len(self.columns)

    @property
    def record_error(self) -> str | None:
        """The reason when the body was refused as a whole."""
        if len(self.refused) == 1 and self.refused[0].index is None:
            return self.refused[0].reason
        return None


def _ident(value: str | None) -> str:
    return (value or "")[:_MAX_IDENT_CHARS]


def _event_reason(index: int, exc: DecodeError) -> str:
    # decode_record names the field from the event's root ($.latency_ms): name it in the envelope.
    return str(exc).replace("`$", f"`$.events[{index}]")


def read_intake(body: bytes) -> Intake:
    """Validate one body; never raises (a refusal says what was wrong)."""
    try:
        head = _head_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Intake(refused=[Refusal(None, f"not a record (envelope or event): {exc}")])
    source_host = _ident(head.source_host)
    if not isinstance(head.columns, msgspec.UnsetType):
        return _read_columns(body, source_host, _ident(head.batch_id))
    if isinstance(head.events, msgspec.UnsetType):  # a bare event
        intake = Intake(
            source_host=source_host, batch_id=f"event:{_ident(head.event_id)}", event_count=1
        )
        try:
            intake.events = decode_record(body)
        except DecodeError as exc:
            intake.refused.append(Refusal(None, str(exc)))
            return intake
        intake.record = body
        intake.pool = intake.events[0].pool
        return intake
    intake = Intake(source_host=source_host, batch_id=_ident(head.batch_id), envelope=True)
    try:
        raw_events = _raw_list_decoder.decode(head.events)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        intake.refused.append(Refusal(None, f"invalid record: `$.events` is not a list: {exc}"))
        return intake
    intake.event_count = len(raw_events)
    try:
        intake.events = decode_record(body)
    except DecodeError:
        _split(body, raw_events, intake)
    else:
        intake.record = body
    if intake.events:
        intake.pool = intake.events[0].pool
    return intake


def _read_columns(body: bytes, source_host: str, batch_id: str) -> Intake:
    """A v2 envelope, taken or refused whole."""
    intake = Intake(source_host=source_host, batch_id=batch_id, envelope=True)
    try:
        batch = decode_columns(body)
    except DecodeError as exc:
        intake.refused.append(Refusal(None, str(exc)))
        return intake
    intake.columns = batch
    intake.record = body
    intake.pool = batch.pool_name
    intake.event_count = len(batch)
    return intake


def _split(body: bytes, raw_events: list[msgspec.Raw], intake: Intake) -> None:
    """Decode event by event; rebuild the envelope of the good ones (header checked again)."""
    good: list[msgspec.Raw] = []
    for index, raw in enumerate(raw_events):
        try:
            decode_record(bytes(raw))
        except DecodeError as exc:
            intake.refused.append(Refusal(index, _event_reason(index, exc)))
        else:
            good.append(raw)
    if not good:
        if not raw_events:
            intake.refused.append(Refusal(None, "invalid record: `$.events` is empty"))
        return
    members = _raw_object_decoder.decode(body)
    members["events"] = msgspec.Raw(b"[" + b",".join(bytes(r) for r in good) + b"]")
    record = msgspec.json.encode(members)
    try:
        intake.events = decode_record(record)
    except DecodeError as exc:  # every event passed alone: the header is what is wrong
        intake.refused = [Refusal(None, str(exc))]
        return
    intake.record = record
