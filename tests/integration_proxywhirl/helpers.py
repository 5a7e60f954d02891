"""Shared pieces of the ProxyWhirl integration tests: rotators over the lab, event capture."""

from __future__ import annotations

import hashlib
import hmac
import threading
from contextvars import ContextVar
from typing import Any

from proxywhirl import AsyncProxyWhirl, Proxy, ProxyWhirl
from proxywhirl.exceptions import ProxyPoolEmptyError
from proxywhirl.retry import RetryPolicy
from pydantic import SecretStr

from schemas.wire import WireBatch, WireEvent, decode_batch
from tests.support.proxies import LabProxy, ProxyLab

FLEET_KEY = "test-fleet-key-0123456789abcdef"
SOURCE_HOST = "fleet-host-1"
DEFAULT_POOL = "datacenter"
DEFAULT_REGION = "eu-west"
FAST_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.01, multiplier=2.0)

# Pool, region and other attributes of each lab proxy inside the rotator.
PROXY_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "healthy": {"tags": {"pool:residential", "lab:healthy"}, "country_code": "DE"},
    "slow": {"tags": {"lab:slow"}, "region": "us-east", "country_code": "US"},
    "auth": {"tags": {"lab:auth", "region:ap-south"}},
    "dead": {"tags": {"lab:dead"}},
}
EXPECTED_LABELS = {
    "healthy": ("residential", "DE"),
    "slow": (DEFAULT_POOL, "us-east"),
    "auth": (DEFAULT_POOL, "ap-south"),
    "dead": (DEFAULT_POOL, DEFAULT_REGION),
}


def expected_proxy_id(lab_proxy: LabProxy, key: str = FLEET_KEY) -> str:
    """The documented proxy id: HMAC-SHA256(fleet key, "host:port"), 32 hex characters."""
    address = f"{lab_proxy.host}:{lab_proxy.port}".encode()
    return hmac.new(key.encode(), address, hashlib.sha256).hexdigest()[:32]


def lab_proxy_models(lab: ProxyLab, names: tuple[str, ...]) -> list[Proxy]:
    proxies = []
    for name in names:
        lab_proxy = lab.lab_proxies()[name]
        fields: dict[str, Any] = {"url": lab_proxy.url, "allow_local": True}
        fields.update(PROXY_ATTRIBUTES[name])
        if lab_proxy.username is not None and lab_proxy.password is not None:
            fields["username"] = SecretStr(lab_proxy.username)
            fields["password"] = SecretStr(lab_proxy.password)
        proxies.append(Proxy(**fields))
    return proxies


PINNED: ContextVar[str] = ContextVar("pinned_lab_proxy")


class PinnedStrategy:
    """A user's own rotation strategy: selects the proxy tagged ``lab:<name>`` named in
    :data:`PINNED` (per thread / task), so a test knows which proxy serves each request."""

    def __init__(self) -> None:
        self.selected: list[str] = []
        self._lock = threading.Lock()

    def select(self, pool: Any, context: Any = None) -> Proxy:
        wanted = f"lab:{PINNED.get()}"
        for proxy in pool.get_all_proxies():
            if wanted in proxy.tags:
                proxy.start_request()
                with self._lock:
                    self.selected.append(wanted)
                return proxy  # type: ignore[no-any-return]
        raise ProxyPoolEmptyError(f"{wanted} is not available")

    def record_result(self, proxy: Proxy, success: bool, response_time_ms: float) -> None:
        proxy.complete_request(success=success, response_time_ms=response_time_ms)


def relax_circuit_breakers(rotator: ProxyWhirl | AsyncProxyWhirl) -> None:
    """Keep ProxyWhirl's breakers closed so a test's sequence of failures stays deterministic."""
    for breaker in rotator.circuit_breakers.values():
        breaker.failure_threshold = 10_000


def sync_rotator(lab: ProxyLab, names: tuple[str, ...], strategy: Any = None) -> ProxyWhirl:
    rotator = ProxyWhirl(
        proxies=lab_proxy_models(lab, names),
        strategy=strategy,
        retry_policy=FAST_RETRIES,
        bootstrap=False,
    )
    relax_circuit_breakers(rotator)
    return rotator


def async_rotator(lab: ProxyLab, names: tuple[str, ...], strategy: Any = None) -> AsyncProxyWhirl:
    rotator = AsyncProxyWhirl(
        proxies=lab_proxy_models(lab, names),
        strategy=strategy,
        retry_policy=FAST_RETRIES,
        bootstrap=False,
    )
    relax_circuit_breakers(rotator)
    return rotator


class Capture:
    """The in-process transport's target: keeps every envelope's exact bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.payloads: list[bytes] = []

    def deliver(self, pool: str, payload: bytes) -> None:
        with self._lock:
            self.payloads.append(payload)

    def batches(self) -> list[WireBatch]:
        with self._lock:
            payloads = list(self.payloads)
        return [decode_batch(payload) for payload in payloads]

    def events(self) -> list[WireEvent]:
        return [event for batch in self.batches() for event in batch.events]
