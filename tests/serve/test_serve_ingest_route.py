"""POST /api/v1/ingest in process: per-event validation and dead letters, encodings and size
limits, auth, duplicates, backpressure and readiness (real chDB, inbox and hand-off queue)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import cramjam
import pytest
from serve_kit import (
    INGEST_TOKEN,
    MAX_BODY_BYTES,
    MAX_DECODED_BYTES,
    QUEUE_RECORDS,
    READ_TOKEN,
    RETRY_AFTER_S,
    IngestRig,
    envelope,
    event,
)

from stream_app.embedded.handoff import DecodedRecord

PATH = "/api/v1/ingest"
AUTH = {"authorization": f"Bearer {INGEST_TOKEN}"}


def _post(rig: IngestRig, body: bytes, **headers: str) -> Any:
    return rig.client.post(
        PATH, content=body, headers={"content-type": "application/json", **AUTH, **headers}
    )


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.fixture(autouse=True)
def _ready(rig: IngestRig) -> None:
    rig.ingestor.recover(rig.storage, rig.database)


def test_good_events_are_taken_and_bad_ones_come_back_with_index_and_reason(
    rig: IngestRig,
) -> None:
    body = _json(
        envelope("b-1", [event(0), event(1, latency_ms=-5.0), event(2), event(3, outcome="x")])
    )
    response = _post(rig, body)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["accepted"] == 2
    assert doc["duplicate"] is False
    assert [r["index"] for r in doc["refused"]] == [1, 3]
    assert "$.events[1].latency_ms" in doc["refused"][0]["reason"]
    assert "$.events[3].outcome" in doc["refused"][1]["reason"]
    (queued,) = rig.handoff.take(10)
    assert isinstance(queued, DecodedRecord)
    assert [e.event_id for e in queued.events] == ["ev-0", "ev-2"]
    rows = rig.dead_letters()
    assert [(r[0], r[1]) for r in rows] == [("b-1", 1), ("b-1", 3)]
    assert '"ev-1"' in str(rows[0][3])
    assert "latency_ms" in str(rows[0][2])
    # The retry (its answer was lost) is a duplicate: nothing queued, no second dead letter.
    again = _post(rig, body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["accepted"] == 0
    assert rig.handoff.take(10) == []
    assert len(rig.dead_letters()) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed"),
        (b"[1, 2]", "not a record"),
        (_json({**envelope("b-2", [event(0)]), "pool": "bad pool!"}), "$.pool"),
        (_json(envelope("b-3", [])), "empty"),
    ],
    ids=["not-json", "array", "bad-header", "no-events"],
)
def test_a_record_refused_as_a_whole_is_422_and_a_dead_letter(
    rig: IngestRig, body: bytes, reason: str
) -> None:
    response = _post(rig, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["accepted"] == 0
    assert [r["index"] for r in doc["refused"]] == [None]
    assert reason in doc["refused"][0]["reason"]
    assert [r[1] for r in rig.dead_letters()] == [-1]
    assert rig.handoff.take(10) == []


def test_every_event_refused_is_422_with_each_index(rig: IngestRig) -> None:
    response = _post(rig, _json(envelope("b-4", [event(0, pool=""), event(1, latency_ms=-1)])))
    assert response.status_code == 422
    assert [r["index"] for r in response.json()["refused"]] == [0, 1]


def test_a_bare_event_is_taken_and_deduplicated_by_its_id(rig: IngestRig) -> None:
    body = _json(event(7))
    assert _post(rig, body).json()["accepted"] == 1
    assert _post(rig, body).json()["duplicate"] is True
    assert len(rig.handoff.take(10)) == 1


def _zstd_streamed(raw: bytes) -> bytes:
    """A zstd frame that does not declare its size (as streaming compressors write it)."""
    compressor = cramjam.zstd.Compressor()
    compressor.compress(raw)
    return bytes(compressor.finish())


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "zstd-streamed"])
def test_compressed_bodies_are_taken(rig: IngestRig, encoding: str) -> None:
    raw = _json(envelope(f"b-{encoding}", [event(i) for i in range(1_200)]))
    body = {
        "gzip": gzip.compress,
        "zstd": lambda b: bytes(cramjam.zstd.compress(b)),
        "zstd-streamed": _zstd_streamed,
    }[encoding](raw)
    if encoding == "zstd-streamed":  # no declared size, the first guess too small: it grows
        assert len(body) * 16 < len(raw)
    response = _post(rig, body, **{"content-encoding": encoding.removesuffix("-streamed")})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1_200


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_a_zip_bomb_is_refused_with_413(rig: IngestRig, encoding: str) -> None:
    raw = b" " * (MAX_DECODED_BYTES * 8)  # whitespace: valid JSON padding, compresses ~1000x
    body = gzip.compress(raw) if encoding == "gzip" else bytes(cramjam.zstd.compress(raw))
    assert len(body) < MAX_BODY_BYTES
    response = _post(rig, body, **{"content-encoding": encoding})
    assert response.status_code == 413
    assert "decompresses to more than" in response.json()["detail"]


def test_a_body_too_large_as_sent_is_413(rig: IngestRig) -> None:
    response = _post(rig, b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"content-encoding": "br"}, 415),
        ({"content-type": "text/plain"}, 415),
        ({"content-encoding": "gzip"}, 400),  # not gzip data
    ],
    ids=["brotli", "text", "corrupt-gzip"],
)
def test_unreadable_bodies(rig: IngestRig, headers: dict[str, str], status: int) -> None:
    response = _post(rig, _json(envelope("b-5", [event(0)])), **headers)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), (f"Bearer {READ_TOKEN}", 403), ("Bearer not-a-token", 401)],
    ids=["no-token", "read-token", "unknown-token"],
)
def test_ingest_needs_the_ingest_role(
    rig: IngestRig, authorization: str | None, status: int
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = _json(envelope("b-6", [event(0)]))
    response = rig.client.post(PATH, content=body, headers=headers)
    assert response.status_code == status
    assert "Bearer" in response.headers["www-authenticate"]
    assert rig.handoff.take(10) == []


def test_a_full_queue_answers_429_with_retry_after_and_holds_nothing_more(
    rig: IngestRig,
) -> None:
    for n in range(QUEUE_RECORDS):
        assert _post(rig, _json(envelope(f"q-{n}", [event(n)]))).status_code == 200
    refused = _post(rig, _json(envelope("q-full", [event(99)])))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
    assert rig.inbox.pending_count() == QUEUE_RECORDS  # nothing stored for the refused one
    assert len(rig.handoff) == QUEUE_RECORDS
    # The pipeline takes what is queued: room again, and the retry is taken (not a duplicate).
    rig.handoff.done(len(rig.handoff.take(10)))
    retried = _post(rig, _json(envelope("q-full", [event(99)])))
    assert retried.status_code == 200
    assert retried.json()["accepted"] == 1


def test_a_closed_pipeline_answers_503_with_retry_after(rig: IngestRig) -> None:
    rig.handoff.close()
    response = _post(rig, _json(envelope("b-7", [event(0)])))
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
