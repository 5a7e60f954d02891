"""Decoding is total: any bytes give events or a DecodeError naming the field and the reason.

Three sources of input: arbitrary bytes, arbitrary JSON documents (and valid events with one
field replaced by an arbitrary JSON value), and the corpus of hostile records kept in
``tests/schemas/hostile_records`` (``refused/``: each must be a DecodeError; ``accepted/``: each
must decode). Whatever decodes must be within the storage's ranges.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import DecodeError
from schemas.events import (
    LABEL_PATTERN,
    MAX_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_RECORD_BYTES,
    MAX_TS_MS,
)
from schemas.privacy import privacy_reason
from schemas.wire import WireBatch, WireEvent, decode_envelope_or_event, decode_record

CORPUS = Path(__file__).parent / "hostile_records"
GOOD: dict[str, Any] = {
    "event_id": "e1",
    "ts_ms": 1_700_000_000_000,
    "pool": "pool-a",
    "region": "eu",
    "outcome": "success",
    "latency_ms": 12.5,
    "source_host": "host-1",
}


def decode_or_error(data: bytes) -> list[WireEvent] | DecodeError:
    """What decoding gives; any exception other than DecodeError fails the test."""
    try:
        return decode_record(data)
    except DecodeError as exc:
        return exc


def assert_storable(events: list[WireEvent]) -> None:
    """Every accepted event is within the storage's ranges and the privacy rules."""
    assert events
    for ev in events:
        assert 0 <= ev.ts_ms <= MAX_TS_MS
        assert 0 <= ev.bytes_in <= MAX_BYTES
        assert 0 <= ev.bytes_out <= MAX_BYTES
        assert math.isfinite(ev.latency_ms)
        assert ev.latency_ms >= 0
        for label in (ev.pool, ev.region, ev.source_host):
            assert 1 <= len(label) <= 64
            assert label.isascii()
            assert privacy_reason(label) is None


def check(data: bytes) -> None:
    got = decode_or_error(data)
    if isinstance(got, DecodeError):
        assert str(got)  # a reason, never an empty message
    else:
        assert_storable(got)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check(data)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_bytes_spliced_into_a_valid_event_decode_or_raise_decode_error(junk: bytes) -> None:
    text = json.dumps(GOOD).encode()
    for at in (1, len(text) // 2, len(text) - 1):
        check(text[:at] + junk + text[at:])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_documents_decode_or_raise_decode_error(doc: Any) -> None:
    check(json.dumps(doc).encode())


@settings(max_examples=400)
@given(st.sampled_from(sorted([*GOOD, "proxy_id", "bytes_in", "target_domain"])), json_values)
def test_a_valid_event_with_one_field_replaced_decodes_or_names_the_field(
    field: str, value: Any
) -> None:
    got = decode_or_error(json.dumps({**GOOD, field: value}).encode())
    if isinstance(got, DecodeError):
        assert f"`$.{field}`" in str(got) or "unknown field" in str(got), str(got)
    else:
        assert_storable(got)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=len(GOOD) * 4), json_values)
def test_an_envelope_with_one_bad_event_names_its_index(index: int, value: Any) -> None:
    events = [dict(GOOD, event_id=f"e{i}") for i in range(5)]
    i = index % 5
    events[i]["latency_ms"] = value
    envelope = {
        "batch_id": "b",
        "source_host": "host-1",
        "pool": "pool-a",
        "sent_ms": GOOD["ts_ms"],
        "events": events,
    }
    got = decode_or_error(json.dumps(envelope).encode())
    if isinstance(got, DecodeError):
        assert f"$.events[{i}].latency_ms" in str(got), str(got)
    else:
        assert_storable(got)


@settings(max_examples=200)
@given(st.from_regex(LABEL_PATTERN, fullmatch=True))
def test_labels_matching_the_pattern_are_accepted_unless_they_look_like_addresses(
    label: str,
) -> None:
    got = decode_or_error(json.dumps({**GOOD, "pool": label}).encode())
    if privacy_reason(label) is None:
        assert isinstance(got, list)
        assert got[0].pool == label
    else:
        assert isinstance(got, DecodeError)
        assert privacy_reason(label) in str(got)
        assert label not in str(got) or label in GOOD.values()  # never echo an address


def corpus(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).iterdir())


@pytest.mark.parametrize("path", corpus("refused"), ids=lambda p: p.name)
def test_every_hostile_record_of_the_corpus_is_refused_with_a_reason(path: Path) -> None:
    got = decode_or_error(path.read_bytes())
    assert isinstance(got, DecodeError), f"{path.name} was accepted: {got}"
    assert str(got).startswith(("invalid record", "malformed JSON", "record too large"))


@pytest.mark.parametrize("path", corpus("accepted"), ids=lambda p: p.name)
def test_odd_but_valid_records_of_the_corpus_are_accepted(path: Path) -> None:
    got = decode_or_error(path.read_bytes())
    assert isinstance(got, list), f"{path.name} was refused: {got}"
    assert_storable(got)


def test_duplicate_keys_keep_the_last_value() -> None:
    (event,) = decode_record((CORPUS / "accepted" / "duplicate-keys-last-wins.json").read_bytes())
    assert event.pool == "pool-b"


def test_a_bare_event_with_the_word_events_as_a_value_is_still_an_event() -> None:
    decoded = decode_envelope_or_event(json.dumps({**GOOD, "pool": "events"}).encode())
    assert isinstance(decoded, WireEvent)
    assert decoded.pool == "events"
    broken = json.dumps({**GOOD, "pool": "events", "latency_ms": "x"}).encode()
    with pytest.raises(DecodeError, match=r"\$\.latency_ms"):
        decode_record(broken)


def test_an_envelope_error_names_the_envelope_field() -> None:
    envelope = {"batch_id": "b", "source_host": "h", "pool": "p", "sent_ms": 1, "events": []}
    with pytest.raises(DecodeError, match=r"\$\.events"):
        decode_record(json.dumps(envelope).encode())
    assert isinstance(
        decode_envelope_or_event(json.dumps({**envelope, "events": [GOOD]}).encode()), WireBatch
    )


def test_records_over_the_size_limit_are_refused_unparsed() -> None:
    event = json.dumps(GOOD).encode()
    n = MAX_RECORD_BYTES // len(event) + 1
    assert n < MAX_EVENTS_PER_BATCH * 100
    big = (
        b'{"batch_id":"b","source_host":"h","pool":"p","sent_ms":1,"events":['
        + b",".join([event] * n)
        + b"]}"
    )
    with pytest.raises(DecodeError, match="record too large"):
        decode_record(big)


def test_too_many_events_in_one_envelope_are_refused() -> None:
    event = json.dumps(GOOD).encode()
    doc = (
        b'{"batch_id":"b","source_host":"h","pool":"p","sent_ms":1,"events":['
        + b",".join([event] * (MAX_EVENTS_PER_BATCH + 1))
        + b"]}"
    )
    assert len(doc) <= MAX_RECORD_BYTES
    with pytest.raises(DecodeError, match=r"\$\.events"):
        decode_record(doc)
