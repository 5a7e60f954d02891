"""The embedded HTTP ingest: one body -> refusals kept, good events through the inbox into the
pipeline's bounded queue (the same queue the in-process transport feeds).

:meth:`EmbeddedIngestor.ingest` (blocking: the route calls it in a worker thread) does, in order:

1. decompress (bounded) and validate the body (:mod:`.intake`: a v2 or v1 envelope, or one
   event; a v2 envelope goes on as columns, counted by ``WindowAggregator.add_columns``);
2. keep the refusals in ClickHouse (idempotent insert);
3. return at once for a batch identity already accepted (a retry: nothing is counted twice);
4. reserve room in the pipeline's queue, or raise :class:`IngestBusy` (HTTP 429);
5. commit the record to the inbox under the next offset of :data:`INGEST_SOURCE` and queue it,
   in offset order; only then does the sender get its answer.

Before the first body is taken, :meth:`EmbeddedIngestor.recover` replays the records the inbox
holds beyond what the store has (``source_offsets``); until then bodies get
:class:`IngestUnavailable` (HTTP 503), so replayed records keep their offset order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.column_batch import ColumnBatch, decode_any
from schemas.errors import DecodeError
from schemas.wire import WireEvent
from stream_app.core.contributions import Flush
from stream_app.embedded.handoff import DecodedRecord, RecordHandoff
from stream_app.serve.body import decode_body
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.errors import IngestBusy, IngestUnavailable
from stream_app.serve.inbox import IngestInbox
from stream_app.serve.intake import Intake, Refusal, read_intake
from stream_app.serve.settings import IngestSettings
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.errors import SinkUnavailable, StorageError
from stream_app.storage.sink import FlushSink, RejectedRow

__all__ = [
    "INGEST_SOURCE",
    "EmbeddedIngestor",
    "InboxTrimmingSink",
    "IngestCounters",
    "IngestOutcome",
]

logger = logging.getLogger(__name__)

INGEST_SOURCE = "http-ingest"
"""The source (``source_offsets``) of every record taken over HTTP by an embedded store."""

_REPLAY_WAIT_S = 1.0


@dataclass(slots=True)
class IngestOutcome:
    """What became of one body."""

    accepted_events: int = 0
    refused: list[Refusal] = field(default_factory=list)
    duplicate: bool = False
    batch_id: str = ""
    source_host: str = ""

    @property
    def record_error(self) -> str | None:
        if len(self.refused) == 1 and self.refused[0].index is None:
            return self.refused[0].reason
        return None


@dataclass(slots=True)
class IngestCounters:
    """Since start (``/metrics`` and the closing line)."""

    bodies: int = 0
    events_accepted: int = 0
    events_refused: int = 0
    records_refused: int = 0
    duplicates: int = 0
    busy: int = 0
    replayed_records: int = 0


class InboxTrimmingSink:
    """The pipeline's sink, telling the inbox what each written flush stored."""

    def __init__(self, sink: FlushSink, inbox: IngestInbox) -> None:
        self._sink = sink
        self._inbox = inbox

    def write(self, flush: Flush) -> Sequence[RejectedRow]:
        ours = [r for r in flush.ranges if r.source == INGEST_SOURCE]
        if ours:
            try:
                self._inbox.begin_flush(
                    min(r.first_offset for r in ours), max(r.last_offset for r in ours)
                )
            except IngestUnavailable as exc:  # retried by the pipeline like any sink outage
                raise SinkUnavailable(str(exc)) from exc
        rejected = self._sink.write(flush)
        if ours:
            try:
                self._inbox.stored_through(max(r.last_offset for r in ours))
            except IngestUnavailable as exc:  # replayed later and recognised by their offsets
                logger.warning("%s", exc)
        return rejected


def inbox_record(payload: bytes, offset: int) -> DecodedRecord:
    """A record of the inbox (a v2 or v1 envelope, or one event, as taken) decoded again;
    raises DecodeError."""
    decoded = decode_any(payload)
    if isinstance(decoded, ColumnBatch):
        return DecodedRecord([], INGEST_SOURCE, offset, decoded)
    events = [decoded] if isinstance(decoded, WireEvent) else decoded.events
    return DecodedRecord(events, INGEST_SOURCE, offset)


def stored_offset(client: StorageClient, database: str) -> int:
    """The last offset of :data:`INGEST_SOURCE` the store holds (0: none)."""
    rows = client.rows(
        f"SELECT max(last_offset) FROM {quote_identifier(database)}.source_offsets "  # noqa: S608
        "WHERE source = {source:String} AND partition = 0",
        parameters={"source": INGEST_SOURCE},
    )
    return int(rows[0][0] or 0) if rows else 0


class EmbeddedIngestor:
    """HTTP ingest of a process that holds the store and runs the pipeline."""

    def __init__(
        self,
        settings: IngestSettings,
        inbox: IngestInbox,
        handoff: RecordHandoff,
        dead_letters: IngestDeadLetters,
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._handoff = handoff
        self._dead_letters = dead_letters
        self._ready = threading.Event()
        self.counters = IngestCounters()

    def queued(self) -> int:
        """Records waiting in the pipeline's queue (every transport's)."""
        return len(self._handoff)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._handoff.closed

    def interrupted_flush(self, client: StorageClient, database: str) -> list[DecodedRecord]:
        """The records of a flush that was being written when the process stopped and whose
        offset the store does not hold: aggregate them again as ONE flush before anything else
        (same offsets, same deduplication token: what was stored of it is not stored twice)."""
        stored = stored_offset(client, database)
        self._inbox.stored_through(stored)
        intent = self._inbox.flush_intent()
        if intent is None:
            return []
        first, last = intent
        records: list[DecodedRecord] = []
        for offset, payload in self._inbox.pending_after(first - 1, through=last):
            try:
                records.append(inbox_record(payload, offset))
            except DecodeError as exc:  # stored by this process after validation: not expected
                logger.error("inbox record %d no longer decodes, skipped: %s", offset, exc)
        if records:
            logger.warning(
                "ingest inbox: the flush of offsets %d-%d was cut short; writing it again",
                first,
                last,
            )
        return records

    def recover(self, client: StorageClient, database: str) -> int:
        """Replay the inbox past the stored offset into the queue, then open for bodies.
        Blocking (waits for room in the queue); returns the records replayed."""
        stored = stored_offset(client, database)
        self._inbox.stored_through(stored)
        self._inbox.start_after(stored)
        replayed = 0
        for offset, payload in self._inbox.pending_after(stored):
            try:
                record = inbox_record(payload, offset)
            except DecodeError as exc:  # stored by this process after validation: not expected
                logger.error("inbox record %d no longer decodes, skipped: %s", offset, exc)
                continue
            while not self._handoff.reserve(record.count, _REPLAY_WAIT_S):
                if self._handoff.closed:
                    return replayed
            self._handoff.put_reserved(record)
            replayed += 1
        self.counters.replayed_records += replayed
        if replayed:
            logger.warning(
                "ingest inbox: %d acknowledged records not yet stored were replayed (past "
                "offset %d): the previous run did not stop cleanly",
                replayed,
                stored,
            )
        self._ready.set()
        return replayed

    def ingest(self, body: bytes, content_encoding: str | None) -> IngestOutcome:
        """Take one body (blocking). Raises BodyRejected, IngestBusy or IngestUnavailable."""
        retry_s = self._settings.retry_after_s
        if not self.ready:
            raise IngestUnavailable(
                "the ingest is not ready (starting or stopping)", retry_after_s=retry_s
            )
        data = decode_body(
            body, content_encoding, max_decoded_bytes=self._settings.max_decoded_bytes
        )
        intake = read_intake(data)
        counters = self.counters
        counters.bodies += 1
        outcome = IngestOutcome(
            refused=intake.refused, batch_id=intake.batch_id, source_host=intake.source_host
        )
        if intake.refused:
            self._keep(data, intake)
        count = intake.accepted
        if not count:
            return outcome
        if self._inbox.seen(intake.source_host, intake.batch_id):
            counters.duplicates += 1
            outcome.duplicate = True
            return outcome
        if not self._handoff.reserve(count):
            counters.busy += 1
            raise IngestBusy("the pipeline's queue is full: retry later", retry_after_s=retry_s)
        events, columns = intake.events, intake.columns

        def queue(offset: int) -> None:
            self._handoff.put_reserved(DecodedRecord(events, INGEST_SOURCE, offset, columns))

        try:
            offset = self._inbox.accept(intake.source_host, intake.batch_id, intake.record, queue)
        except BaseException:
            self._handoff.unreserve(count)
            raise
        if offset is None:  # accepted by a concurrent request meanwhile
            self._handoff.unreserve(count)
            counters.duplicates += 1
            outcome.duplicate = True
            return outcome
        counters.events_accepted += count
        outcome.accepted_events = count
        return outcome

    def _keep(self, body: bytes, intake: Intake) -> None:
        refused: Sequence[Refusal] = intake.refused
        self.counters.events_refused += sum(1 for r in refused if r.index is not None)
        self.counters.records_refused += sum(1 for r in refused if r.index is None)
        try:
            self._dead_letters.keep(
                body, refused, source_host=intake.source_host, batch_id=intake.batch_id
            )
        except StorageError as exc:
            logger.warning("ingest dead letters cannot be stored: %s", exc)
            raise IngestUnavailable(
                "refused events cannot be kept right now (storage unavailable)",
                retry_after_s=self._settings.retry_after_s,
            ) from exc
