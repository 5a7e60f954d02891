"""Classifying aiokafka and Faust errors: retriable (back off, try again) or poison."""

from __future__ import annotations

import asyncio

from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    KafkaTimeoutError,
)

__all__ = ["is_retriable"]


def is_retriable(exc: BaseException) -> bool:
    """Whether the failed Kafka call may succeed later.

    Timeouts, connection errors and every ``KafkaError`` aiokafka marks ``retriable`` are;
    Faust's ``ProducerSendError`` is judged by the ``KafkaError`` it wraps. Anything else
    (message too large, not authorised, unexpected exceptions) is poison.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | asyncio.TimeoutError | ConnectionError | OSError):
            return True
        if isinstance(current, KafkaTimeoutError):
            return True
        if isinstance(current, KafkaError):
            return bool(current.retriable)
        current = current.__cause__
    return False
