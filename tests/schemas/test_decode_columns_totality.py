"""Decoding a columnar envelope (schema v2) is total, as v1 is: any bytes give a batch or a
DecodeError naming the field and the reason; what decodes is storable.

Inputs: arbitrary bytes around the ``"columns"`` mark, valid envelopes with one column, dictionary
or member replaced by an arbitrary JSON value, columns of the wrong length, indexes outside their
dictionary, and private labels in a dictionary.
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.column_batch import ColumnBatch, decode_any
from schemas.errors import DecodeError
from schemas.events import MAX_BYTES, MAX_TS_MS
from schemas.privacy import privacy_reason
from schemas.wire import WireBatch, WireEvent

GOOD: dict[str, Any] = {
    "schema_version": 2,
    "batch_id": "b1",
    "source_host": "host-1",
    "pool": "pool-a",
    "sent_ms": 1_700_000_000_000,
    "count": 3,
    "dictionaries": {
        "pool": ["pool-a"],
        "region": ["eu", "us"],
        "source_host": ["host-1"],
        "outcome": ["success", "timeout"],
        "proxy_id": ["0123456789abcdef"],
        "target_domain": ["example.com"],
    },
    "columns": {
        "event_id": ["e1", "e2", "e3"],
        "ts_ms": [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002],
        "latency_ms": [1.5, 0.0, 30_000.0],
        "pool": [0, 0, 0],
        "region": [0, 1, 0],
        "source_host": [0, 0, 0],
        "outcome": [0, 1, 0],
        "proxy_id": [0, -1, 0],
        "status_code": [200, 0, 599],
        "bytes_in": [1, 2, 3],
        "bytes_out": [4, 5, 6],
        "attempts": [1, 1, 2],
        "target_domain": [-1, 0, -1],
    },
}
COLUMNS = sorted(GOOD["columns"])
DICTIONARIES = sorted(GOOD["dictionaries"])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def decode(data: bytes) -> ColumnBatch | WireBatch | WireEvent | DecodeError:
    try:
        return decode_any(data)
    except DecodeError as exc:
        return exc


def assert_storable(batch: ColumnBatch) -> None:
    for ev in batch.events():
        assert 0 <= ev.ts_ms <= MAX_TS_MS
        assert 0 <= ev.bytes_in <= MAX_BYTES
        assert 0 <= ev.bytes_out <= MAX_BYTES
        assert math.isfinite(ev.latency_ms)
        assert ev.latency_ms >= 0
        for label in (ev.pool, ev.region, ev.source_host):
            assert privacy_reason(label) is None
        assert ev.status_code is None or 100 <= ev.status_code <= 599


def test_the_good_envelope_decodes() -> None:
    batch = decode_any(json.dumps(GOOD).encode())
    assert isinstance(batch, ColumnBatch)
    events = batch.events()
    assert [ev.proxy_id for ev in events] == ["0123456789abcdef", None, "0123456789abcdef"]
    assert [ev.status_code for ev in events] == [200, None, 599]
    assert [ev.target_domain for ev in events] == [None, "example.com", None]
    assert [str(ev.outcome) for ev in events] == ["success", "timeout", "success"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_bytes_around_the_mark_decode_or_raise_decode_error(
    head: bytes, tail: bytes
) -> None:
    result = decode(head + b'"columns"' + tail)
    if isinstance(result, ColumnBatch):
        assert_storable(result)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COLUMNS), json_values)
def test_a_column_replaced_decodes_or_names_it(name: str, value: Any) -> None:
    doc = copy.deepcopy(GOOD)
    doc["columns"][name] = value
    result = decode(json.dumps(doc).encode())
    if isinstance(result, DecodeError):
        assert f"$.columns.{name}" in str(result) or "$.columns" in str(result)
    else:
        assert isinstance(result, ColumnBatch)
        assert_storable(result)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DICTIONARIES), json_values)
def test_a_dictionary_replaced_decodes_or_raises_decode_error(name: str, value: Any) -> None:
    doc = copy.deepcopy(GOOD)
    doc["dictionaries"][name] = value
    result = decode(json.dumps(doc).encode())
    if isinstance(result, ColumnBatch):
        assert_storable(result)
    else:
        assert isinstance(result, DecodeError)


@pytest.mark.parametrize("name", COLUMNS)
def test_a_column_of_the_wrong_length_is_refused(name: str) -> None:
    doc = copy.deepcopy(GOOD)
    doc["columns"][name] = doc["columns"][name][:2]
    with pytest.raises(DecodeError, match=rf"expected `count` = 3 - at `\$\.columns\.{name}`"):
        decode_any(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("name", "index"),
    [("pool", 1), ("region", 2), ("source_host", 5), ("outcome", 2), ("proxy_id", 1)],
)
def test_an_index_outside_its_dictionary_is_refused(name: str, index: int) -> None:
    doc = copy.deepcopy(GOOD)
    doc["columns"][name][2] = index
    with pytest.raises(
        DecodeError, match=rf"index {index} is not in `\$\.dictionaries\.{name}`.*\[2\]`"
    ):
        decode_any(json.dumps(doc).encode())


@pytest.mark.parametrize("name", ["pool", "region", "source_host", "outcome"])
def test_none_is_refused_where_a_label_is_required(name: str) -> None:
    doc = copy.deepcopy(GOOD)
    doc["columns"][name][1] = -1
    with pytest.raises(DecodeError, match=rf"`\$\.columns\.{name}\[1\]`"):
        decode_any(json.dumps(doc).encode())


def test_a_private_label_in_a_dictionary_is_refused() -> None:
    doc = copy.deepcopy(GOOD)
    doc["dictionaries"]["region"][1] = "10.0.0.1"
    with pytest.raises(DecodeError, match=r"`\$\.dictionaries\.region\[1\]`"):
        decode_any(json.dumps(doc).encode())


def test_a_status_code_below_100_is_refused() -> None:
    doc = copy.deepcopy(GOOD)
    doc["columns"]["status_code"][2] = 42
    with pytest.raises(DecodeError, match=r"`\$\.columns\.status_code\[2\]`"):
        decode_any(json.dumps(doc).encode())


def test_optional_columns_may_be_left_out() -> None:
    doc = copy.deepcopy(GOOD)
    for name in ("proxy_id", "status_code", "bytes_in", "bytes_out", "attempts", "target_domain"):
        del doc["columns"][name]
    batch = decode_any(json.dumps(doc).encode())
    assert isinstance(batch, ColumnBatch)
    ev = batch.events()[0]
    assert (ev.proxy_id, ev.status_code, ev.bytes_in, ev.attempts) == (None, None, 0, 1)


def test_v1_envelopes_and_bare_events_are_still_accepted() -> None:
    event = {
        "event_id": "e1",
        "ts_ms": 1,
        "pool": "p",
        "region": "columns",
        "outcome": "success",
        "latency_ms": 1.0,
        "source_host": "h",
    }
    assert isinstance(decode_any(json.dumps(event).encode()), WireEvent)
    envelope = {"batch_id": "b", "source_host": "h", "pool": "p", "sent_ms": 1, "events": [event]}
    assert isinstance(decode_any(json.dumps(envelope).encode()), WireBatch)


def test_an_unknown_schema_version_is_refused() -> None:
    with pytest.raises(DecodeError, match="schema_version"):
        decode_any(json.dumps({**GOOD, "schema_version": 3}).encode())


# -- packed numeric columns (hex of little-endian 8-byte values) ---------------------------------

NUMERIC = [name for name in COLUMNS if name != "event_id"]
_RANGES: dict[str, tuple[float, float]] = {
    "ts_ms": (0, MAX_TS_MS),
    "latency_ms": (0.0, 86_400_000.0),
    "pool": (0, 100_000),
    "region": (0, 100_000),
    "source_host": (0, 100_000),
    "outcome": (0, 100_000),
    "proxy_id": (-1, 100_000),
    "target_domain": (-1, 100_000),
    "status_code": (0, 599),
    "bytes_in": (0, MAX_BYTES),
    "bytes_out": (0, MAX_BYTES),
    "attempts": (1, 1000),
}


def _pack(name: str, values: list[Any]) -> str:
    code = "d" if name == "latency_ms" else "q"
    return struct.pack(f"<{len(values)}{code}", *values).hex()


def _all_packed() -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    for name in NUMERIC:
        doc["columns"][name] = _pack(name, doc["columns"][name])
    return doc


def _fields(batch: ColumnBatch) -> dict[str, list[Any]]:
    return {name: getattr(batch, name).tolist() for name in NUMERIC}


def test_packed_columns_decode_to_the_same_batch_as_arrays() -> None:
    arrays = decode_any(json.dumps(GOOD).encode())
    packed = decode_any(json.dumps(_all_packed()).encode())
    assert isinstance(arrays, ColumnBatch)
    assert isinstance(packed, ColumnBatch)
    assert _fields(packed) == _fields(arrays)
    assert packed.events() == arrays.events()


@pytest.mark.parametrize("name", NUMERIC)
def test_a_packed_value_out_of_its_range_is_refused_naming_it(name: str) -> None:
    low, high = _RANGES[name]
    for wrong in (low - 1, high + 1):
        doc = _all_packed()
        values = list(GOOD["columns"][name])
        values[1] = float(wrong) if name == "latency_ms" else int(wrong)
        doc["columns"][name] = _pack(name, values)
        with pytest.raises(DecodeError, match=re.escape(f"$.columns.{name}[1]")):
            decode_any(json.dumps(doc).encode())


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5])
def test_a_packed_latency_that_is_not_a_finite_duration_is_refused(value: float) -> None:
    doc = _all_packed()
    doc["columns"]["latency_ms"] = _pack("latency_ms", [1.0, value, 2.0])
    with pytest.raises(DecodeError, match=re.escape("$.columns.latency_ms[1]")):
        decode_any(json.dumps(doc).encode())


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize(
    "text",
    [
        "zz" * 24,
        "00 " * 8,
        " " + "0" * 47,
        _pack("ts_ms", [1, 2]),
        _pack("ts_ms", [1, 2, 3, 4]),
        "",
        "0" * 47,
    ],
    ids=["alphabet", "spaces", "space-in-length", "short", "long", "empty", "odd"],
)
def test_a_packed_column_that_is_not_count_values_is_refused_naming_it(
    name: str, text: str
) -> None:
    doc = _all_packed()
    doc["columns"][name] = text
    with pytest.raises(DecodeError, match=re.escape(f"$.columns.{name}")):
        decode_any(json.dumps(doc).encode())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NUMERIC), st.binary(max_size=40))
def test_arbitrary_packed_bytes_decode_or_name_the_column(name: str, raw: bytes) -> None:
    doc = _all_packed()
    doc["columns"][name] = raw.hex()
    result = decode(json.dumps(doc).encode())
    if isinstance(result, DecodeError):
        assert f"$.columns.{name}" in str(result)
    else:
        assert isinstance(result, ColumnBatch)
        assert_storable(result)
