"""The aiokafka side of the Kafka transport: building the client, classifying its errors.

aiokafka is imported inside the functions, so importing this module does not need it.
Retriable: connection and timeout errors, cancellation, and every ``KafkaError`` aiokafka marks
``retriable``. Poison: every other ``KafkaError`` (message too large, not authorised, invalid
topic, unsupported version, ...) and anything unexpected.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from producer.kafka_settings import KafkaTransportSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]

__all__ = ["is_retriable", "new_aiokafka_producer"]


def is_retriable(exc: BaseException) -> bool:
    """Whether a failed send may succeed later (spool and replay) or is poison (drop)."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError  # type: ignore[import-untyped, unused-ignore]

    if isinstance(exc, KafkaTimeoutError | asyncio.TimeoutError | OSError):
        return True
    if isinstance(exc, asyncio.CancelledError):
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return False


def new_aiokafka_producer(settings: KafkaTransportSettings) -> AIOKafkaProducer:
    """An unstarted aiokafka producer configured from ``settings`` (acks=all)."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]
    from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped, unused-ignore]

    s = settings
    ssl_context = None
    if s.security_protocol in ("SSL", "SASL_SSL"):
        ssl_context = create_ssl_context(
            cafile=s.ssl_cafile,
            certfile=s.ssl_certfile,
            keyfile=s.ssl_keyfile,
            password=s.ssl_password.get_secret_value() if s.ssl_password else None,
        )
        ssl_context.check_hostname = s.ssl_check_hostname
    return AIOKafkaProducer(
        bootstrap_servers=s.bootstrap_servers,
        client_id=s.client_id,
        acks="all",
        compression_type=None if s.compression == "none" else s.compression,
        linger_ms=s.linger_ms,
        request_timeout_ms=s.request_timeout_ms,
        retry_backoff_ms=s.retry_backoff_ms,
        max_request_size=s.max_request_bytes,
        max_batch_size=s.max_batch_bytes,
        security_protocol=s.security_protocol,
        ssl_context=ssl_context,
        sasl_mechanism=s.sasl_mechanism,
        sasl_plain_username=s.sasl_plain_username,
        sasl_plain_password=(
            s.sasl_plain_password.get_secret_value() if s.sasl_plain_password else None
        ),
    )
