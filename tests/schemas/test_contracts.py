"""The schema package: generated JSON Schemas, wire/pydantic parity, decode errors."""

from __future__ import annotations

import json

import msgspec
import pytest
from pydantic import ValidationError

from schemas import generate
from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.alerts import AlertEvent, AlertStatus, fingerprint
from schemas.errors import DecodeError
from schemas.events import EventBatch, Outcome, RequestEvent
from schemas.wire import (
    WireBatch,
    WireEvent,
    decode_batch,
    decode_record,
    encode_batch,
    encode_event,
)

PROXY = "0123456789abcdef0123456789abcdef"


def _event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": "h1-0001",
        "ts_ms": 1_795_708_800_000,
        "pool": "poolA",
        "region": "eu-west",
        "proxy_id": PROXY,
        "outcome": "success",
        "status_code": 200,
        "latency_ms": 182.5,
        "bytes_in": 5120,
        "bytes_out": 310,
        "attempts": 1,
        "target_domain": "example.com",
        "source_host": "fleet-host-1",
    }
    event.update(overrides)
    return event


def _batch(events: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {
            "batch_id": "b-1",
            "source_host": "fleet-host-1",
            "pool": "poolA",
            "sent_ms": 1,
            "events": events,
        }
    ).encode()


def test_committed_json_schemas_are_up_to_date() -> None:
    rendered = generate.render()
    assert {
        "request_event.v1.json",
        "event_batch.v1.json",
        "window_aggregate.v1.json",
        "alert_event.v1.json",
    } <= set(rendered)
    for name, text in rendered.items():
        committed = (generate.OUTPUT_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `make schemas`"


@pytest.mark.parametrize(("wire", "model"), [(WireEvent, RequestEvent), (WireBatch, EventBatch)])
def test_wire_structs_mirror_the_pydantic_models(wire: type, model: type) -> None:
    wire_fields = {f.name: f for f in msgspec.structs.fields(wire)}
    model_fields = model.model_fields
    assert set(wire_fields) == set(model_fields)
    for name, field in model_fields.items():
        assert field.is_required() == (wire_fields[name].required), name
        if not field.is_required():
            assert field.default == wire_fields[name].default, name


def test_valid_records_decode_the_same_on_both_paths() -> None:
    raw = _batch(
        [
            _event(),
            _event(
                event_id="h1-0002",
                proxy_id=None,
                status_code=None,
                outcome="timeout",
                target_domain=None,
            ),
        ]
    )
    events = decode_record(raw)
    model = EventBatch.model_validate_json(raw)
    assert [e.event_id for e in events] == [e.event_id for e in model.events]
    assert events[1].outcome is Outcome.TIMEOUT
    assert msgspec.structs.asdict(events[0]) == model.events[0].model_dump()


def test_bare_event_and_envelope_round_trip() -> None:
    event = decode_record(json.dumps(_event()).encode())[0]
    assert decode_record(encode_event(event)) == [event]
    batch = WireBatch(batch_id="b", source_host="h", pool="poolA", sent_ms=5, events=[event])
    assert decode_batch(encode_batch(batch)) == batch


@pytest.mark.parametrize(
    ("record", "where"),
    [
        (_batch([_event(), _event(latency_ms=-1)]), "$.events[1].latency_ms"),
        (_batch([_event(outcome="exploded")]), "$.events[0].outcome"),
        (_batch([_event(region="eu west")]), "$.events[0].region"),
        (_batch([_event(proxy_id="10.0.0.1:3128")]), "$.events[0].proxy_id"),
        (_batch([_event(target_domain="example.com/login?x=1")]), "$.events[0].target_domain"),
        (_batch([_event(status_code=999)]), "$.events[0].status_code"),
        (_batch([_event(extra_field=1)]), "extra_field"),
        (json.dumps(_event(ts_ms="yesterday")).encode(), "$.ts_ms"),
        (json.dumps({k: v for k, v in _event().items() if k != "pool"}).encode(), "pool"),
        (_batch([]), "$.events"),
    ],
)
def test_bad_records_name_the_field_and_the_reason(record: bytes, where: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_record(record)
    assert where in str(info.value)


@pytest.mark.parametrize("record", [b"", b"{", b"[1,2]", b"null", b"\xff\xfe"])
def test_garbage_is_a_decode_error_not_a_crash(record: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_record(record)


def test_pydantic_edge_rejects_what_the_wire_rejects() -> None:
    with pytest.raises(ValidationError) as info:
        RequestEvent.model_validate(_event(pool="10.0.0.1/32"))
    assert "pool" in str(info.value)


def test_window_aggregate_rates_are_none_without_traffic() -> None:
    empty = WindowAggregate(
        scope=Scope(pool="p", region="r"),
        window_start_ms=0,
        window_end_ms=10_000,
        window_s=10,
        requests=0,
        successes=0,
    )
    assert empty.success_rate is None
    assert empty.error_rate is None
    assert empty.outcome_rate(Outcome.TIMEOUT) is None
    busy = empty.model_copy(
        update={
            "requests": 4,
            "successes": 3,
            "outcomes": {Outcome.SUCCESS: 3, Outcome.TIMEOUT: 1},
            "latency": LatencyHistogram(buckets={233: 4}, count=4, sum_ms=4.0),
        }
    )
    assert busy.error_rate == pytest.approx(0.25)
    assert busy.outcome_rate(Outcome.TIMEOUT) == pytest.approx(0.25)
    assert busy.throughput_rps == pytest.approx(0.4)
    assert busy.latency.quantile(0.5) == pytest.approx(1.0, rel=0.01)


def test_alertmanager_fingerprint_test_vector() -> None:
    labels = {
        "alertname": "ProxyPoolHighErrorRate",
        "pool": "poolA",
        "region": "eu",
        "severity": "page",
    }
    assert fingerprint(labels) == "bb56319a8aab4ed3"
    assert fingerprint(dict(reversed(labels.items()))) == "bb56319a8aab4ed3"
    assert fingerprint({**labels, "region": "us"}) != "bb56319a8aab4ed3"


def test_alert_event_renders_alertmanager_body() -> None:
    from datetime import UTC, datetime

    alert = AlertEvent(
        labels={"alertname": "X", "severity": "page"},
        annotations={"summary": "s"},
        status=AlertStatus.RESOLVED,
        starts_at=datetime(2026, 11, 26, 21, 32, 7, tzinfo=UTC),
        ends_at=datetime(2026, 11, 26, 21, 32, 11, tzinfo=UTC),
    )
    body = alert.to_alertmanager()
    assert body["startsAt"] == "2026-11-26T21:32:07.000Z"
    assert body["endsAt"] == "2026-11-26T21:32:11.000Z"
    assert json.loads(alert.model_dump_json())["fingerprint"] == fingerprint(alert.labels)
