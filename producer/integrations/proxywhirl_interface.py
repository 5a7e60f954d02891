"""What the ProxyWhirl integration needs from a producer, and what it counts about itself.

:class:`EventEmitter` is the part of :class:`producer.MetricsProducer` the integration calls
(any object with these two methods will do, e.g. in tests; where it also has
``emit_deferred``, with emit()'s positional arguments up to ``target_domain``, the common
request's event goes through that); :class:`InstrumentationStats` is
what :meth:`producer.integrations.proxywhirl.Instrumentation.stats` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from schemas.events import Outcome

__all__ = ["EventEmitter", "InstrumentationStats"]


class EventEmitter(Protocol):
    """What the integration needs from a :class:`producer.MetricsProducer`."""

    def proxy_id(self, address: str) -> str: ...

    def emit(
        self,
        pool: str,
        region: str,
        proxy_id: str | None = None,
        outcome: Outcome | str = Outcome.SUCCESS,
        latency_ms: float = 0.0,
        status_code: int | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        attempts: int = 1,
        target_domain: str | None = None,
        ts_ms: int | None = None,
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class InstrumentationStats:
    """Counters of one instrumentation (requests and events themselves are counted by the
    producer: ``emitted`` and ``rejected`` in its stats)."""

    refused: int
    """Events the producer did not take (``emit()`` returned ``False``: see its stats)."""
    unknown_proxy: int
    """Requests sent through a proxy the strategy wrapper did not see (strategy replaced while
    the request was running); their events carry no proxy id and the default pool/region."""
    internal_errors: int
    """Failures inside the instrumentation; the request itself was not affected."""
    invalid_labels: int
    """Proxy tags, regions or countries skipped because they were no valid, safe label."""
    invalid_addresses: int
    """Proxies whose URL gave no usable address (no proxy id)."""
