"""Request events and batch envelopes: what fleet hosts send (schema version 1).

These pydantic models are the documented contract and generate the JSON Schemas under
``schemas/jsonschema/``. The hot path decodes the same shapes with :mod:`schemas.wire`; a test
keeps the two definitions identical.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.privacy import privacy_reason

SCHEMA_VERSION: Literal[1] = 1

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
"""Pool, region and host names: 1-64 characters, safe as Prometheus label values and in SQL."""

PROXY_ID_PATTERN = r"^[0-9a-f]{16,64}$"
"""A proxy id is an HMAC digest in lowercase hex, never an address."""

DOMAIN_PATTERN = r"^[A-Za-z0-9.-]{1,253}$"
"""A target domain only: no scheme, port, path or query."""

MAX_LATENCY_MS = 86_400_000.0
MAX_EVENTS_PER_BATCH = 100_000

MAX_TS_MS = 4_102_444_799_999
"""The latest storable event time, 2099-12-31T23:59:59.999Z. Storage keeps times as ClickHouse
``DateTime`` (seconds up to 2106-02-07); stopping at the end of 2099 keeps every window, window
end and rollup bucket derived from an event inside that range."""

MAX_BYTES = 1 << 40
"""Bytes in or out of one request, at most 1 TiB: a window's UInt64 sums cannot overflow before
16 million such requests land in one scope's window."""

MAX_RECORD_BYTES = 32 << 20
"""The largest record (envelope or event) decoded: 32 MiB. Larger ones are refused unparsed."""


class Outcome(enum.StrEnum):
    """How one proxied request ended."""

    SUCCESS = "success"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    PROXY_ERROR = "proxy_error"
    PROXY_AUTH_ERROR = "proxy_auth_error"
    TLS_ERROR = "tls_error"
    NO_PROXY_AVAILABLE = "no_proxy_available"
    RATE_LIMITED = "rate_limited"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


def _not_private(value: str) -> str:
    reason = privacy_reason(value)
    if reason is not None:
        raise ValueError(reason)
    return value


def _not_private_domain(value: str | None) -> str | None:
    return None if value is None else _not_private(value)


Label = Annotated[str, Field(pattern=LABEL_PATTERN), AfterValidator(_not_private)]
"""A pool, region or host name: the pattern, and nothing that looks like an address."""


class RequestEvent(BaseModel):
    """One proxied request, as seen by the fleet host that made it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    ts_ms: Annotated[
        int, Field(ge=0, le=MAX_TS_MS, description="Event time: UTC epoch milliseconds")
    ]
    pool: Label
    region: Label
    proxy_id: Annotated[
        str | None,
        Field(pattern=PROXY_ID_PATTERN, description="HMAC of the proxy address; null if none"),
    ] = None
    outcome: Outcome
    status_code: Annotated[int | None, Field(ge=100, le=599)] = None
    latency_ms: Annotated[float, Field(ge=0.0, le=MAX_LATENCY_MS)]
    bytes_in: Annotated[int, Field(ge=0, le=MAX_BYTES)] = 0
    bytes_out: Annotated[int, Field(ge=0, le=MAX_BYTES)] = 0
    attempts: Annotated[int, Field(ge=1, le=1000)] = 1
    target_domain: Annotated[
        str | None, Field(pattern=DOMAIN_PATTERN), AfterValidator(_not_private_domain)
    ] = None
    source_host: Label


class EventBatch(BaseModel):
    """A batch envelope: many events from one host for one pool, one Kafka record (key = pool)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: Annotated[str, Field(min_length=1, max_length=128)]
    source_host: Label
    pool: Label
    sent_ms: Annotated[int, Field(ge=0, le=MAX_TS_MS)]
    events: Annotated[list[RequestEvent], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]
