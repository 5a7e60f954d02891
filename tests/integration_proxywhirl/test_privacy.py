"""No proxy address, port, credential, or target path or query leaves the fleet host.

Every byte the producer hands to its transport, every log record of the producer and the
integration, and the producer's Prometheus exposition are scanned after a mix of requests that
succeed, fail, time out and hit a dead port, through proxies with credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest

from producer import MetricsProducer
from producer.integrations.proxywhirl import instrument
from tests.integration_proxywhirl.helpers import Capture, async_rotator, sync_rotator
from tests.support.proxies import ProxyLab

SECRET_PATH = "/ok/customer-4711/orders-SECRETPATH"
SECRET_QUERY = "session=tok-SECRETQUERY-9f3a&email=someone%40example.org"
ALL_PROXIES = ("healthy", "slow", "auth", "dead")


def _forbidden(lab: ProxyLab) -> tuple[list[str], set[int]]:
    """Substrings that must never appear, and port numbers that must never appear as values."""
    strings = ["127.0.0.1", "customer-4711", "SECRETPATH", "SECRETQUERY", "someone", "session="]
    strings += ["/ok", "?", "http://", "@"]
    ports = {lab.target.port}
    for proxy in lab.lab_proxies().values():
        ports.add(proxy.port)
        strings += [f"127.0.0.1:{proxy.port}", f":{proxy.port}"]
        if proxy.username and proxy.password:
            strings += [proxy.username, proxy.password]
            pair = f"{proxy.username}:{proxy.password}".encode()
            strings.append(base64.b64encode(pair).decode())
    user, password = ProxyLab.AUTH_REQUIRED_CREDENTIALS
    strings += [user, password]
    return strings, ports


def _json_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_values(item)
    else:
        yield value


def _assert_clean(text: str, strings: list[str], ports: set[int], where: str) -> None:
    for needle in strings:
        assert needle not in text, f"{needle!r} leaked into {where}"
    for port in ports:
        assert re.search(rf"(?<![0-9A-Za-z.]){port}(?![0-9A-Za-z])", text) is None, (
            f"port {port} leaked into {where}"
        )


async def test_nothing_private_leaves_the_host(
    lab: ProxyLab,
    producer: MetricsProducer,
    capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="producer")
    sync_r = sync_rotator(lab, ALL_PROXIES)
    async_r = async_rotator(lab, ALL_PROXIES)
    instrument(sync_r, producer, include_domain=True)
    instrument(async_r, producer, include_domain=True)
    urls = [
        lab.target_url(f"{SECRET_PATH}?{SECRET_QUERY}", host="localhost"),
        lab.target_url(f"/503?{SECRET_QUERY}", host="localhost"),
        lab.target_url(f"/slow?ms=400&{SECRET_QUERY}", host="localhost"),
        lab.target_url(f"{SECRET_PATH}?{SECRET_QUERY}"),
    ]

    def sync_calls() -> None:
        for url in urls * 2:
            with contextlib.suppress(Exception):  # failures are part of the mix
                sync_r.get(url, timeout=0.15, params={"api_key": "SECRETQUERY-param"})

    async def async_call(url: str) -> None:
        with contextlib.suppress(Exception):
            await async_r.get(url, timeout=0.15)

    async with async_r:
        await asyncio.gather(asyncio.to_thread(sync_calls), *(async_call(u) for u in urls * 2))
    assert await producer.aflush(timeout_s=5.0)

    strings, ports = _forbidden(lab)
    assert capture.payloads, "nothing was emitted: the scan would prove nothing"
    events = capture.events()
    assert len(events) == 16
    # The fields the scan looks at really are there: ids, outcomes, the allowed domain.
    assert {event.target_domain for event in events} == {"localhost", None}
    assert len({event.outcome for event in events}) >= 3
    for payload in capture.payloads:
        text = payload.decode("utf-8")
        _assert_clean(text, strings, ports, "an envelope")
        for value in _json_values(json.loads(text)):
            if isinstance(value, int) and not isinstance(value, bool):
                assert value not in ports, "a port number was sent as a value"
    for record in caplog.records:
        _assert_clean(record.getMessage(), strings, ports, f"log record {record.name}")
    _assert_clean(generate_latest(producer.registry).decode(), strings, ports, "metrics")
