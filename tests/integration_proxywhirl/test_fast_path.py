"""The request wrappers' inline path for the common request emits what the general path would.

The wrappers decide the event of a successful single-attempt request themselves
(``Instrumentation._settle``) and hand any other to ``Instrumentation._record``. Here every
request's event is decided both ways, on the same observer and response, and the two must be
identical but for the latency (measured at two different moments).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from producer import MetricsProducer
from producer.integrations.proxywhirl import Instrumentation, instrument
from schemas.events import Outcome
from tests.integration_proxywhirl.helpers import async_rotator, sync_rotator
from tests.support.proxies import OK_BODY, ProxyLab

LATENCY = 4  # position of latency_ms in EventEmitter.emit's arguments


class Recorder:
    """An EventEmitter that keeps every emit() (and emit_deferred()) call's arguments."""

    def __init__(self, real: MetricsProducer) -> None:
        self._real = real
        self.calls: list[tuple[Any, ...]] = []

    def proxy_id(self, address: str) -> str:
        return self._real.proxy_id(address)

    def emit(self, *args: Any) -> bool:
        self.calls.append(args)
        return True

    emit_deferred = emit  # the inline path calls this one, as on a MetricsProducer


@pytest.fixture
def both_ways(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Makes every settled request also decide its event through ``_record``; returns, per
    request, which path ``_settle`` took itself ("inline" or "general")."""
    paths: list[str] = []
    settle, record = Instrumentation._settle, Instrumentation._record
    inside_settle = [False]

    def counting_record(self: Instrumentation, *args: Any) -> None:
        if inside_settle[0]:
            paths[-1] = "general"
        record(self, *args)

    def settle_both_ways(
        self: Instrumentation, begun: Any, url: Any, response: httpx.Response
    ) -> None:
        paths.append("inline")
        inside_settle[0] = True
        try:
            settle(self, begun, url, response)
        finally:
            inside_settle[0] = False
        observer, _token, start_ns = begun
        self._record(observer, time.perf_counter_ns() - start_ns, url, response, None)

    monkeypatch.setattr(Instrumentation, "_record", counting_record)
    monkeypatch.setattr(Instrumentation, "_settle", settle_both_ways)
    return paths


def _assert_same_events(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    assert len(calls) % 2 == 0
    events = []
    for inline, general in zip(calls[::2], calls[1::2], strict=True):
        assert (
            inline[:LATENCY] + inline[LATENCY + 1 :] == general[:LATENCY] + general[LATENCY + 1 :]
        )
        assert 0.0 <= inline[LATENCY] <= general[LATENCY]
        events.append(inline)
    return events


@pytest.mark.parametrize("include_domain", [False, True])
def test_sync_inline_events_equal_the_general_path(
    lab: ProxyLab, producer: MetricsProducer, both_ways: list[str], include_domain: bool
) -> None:
    recorder = Recorder(producer)
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, recorder, include_domain=include_domain)
    rotator.get(lab.target_url("/ok", host="localhost"))
    rotator.post(lab.target_url("/ok/form?q=1"), content=b"x" * 300)
    rotator.head(lab.target_url("/ok"))
    rotator.get(lab.target_url("/404"))
    rotator.get(lab.target_url("/ok"), auth=None)  # the general begin, then the inline settle
    assert both_ways == ["inline", "inline", "inline", "general", "inline"]
    events = _assert_same_events(recorder.calls)
    outcomes = [event[3] for event in events]
    assert outcomes == [Outcome.SUCCESS] * 3 + [Outcome.HTTP_ERROR, Outcome.SUCCESS]
    # status, bytes in, bytes out, attempts of the first two requests
    assert events[0][5:9] == (200, len(OK_BODY), 0, 1)
    assert events[1][5:9] == (200, len(OK_BODY), 300, 1)
    assert events[0][9] == ("localhost" if include_domain else None)


def test_async_inline_events_equal_the_general_path(
    lab: ProxyLab, producer: MetricsProducer, both_ways: list[str]
) -> None:
    recorder = Recorder(producer)

    async def run() -> None:
        rotator = async_rotator(lab, ("healthy",))
        async with rotator:
            instrument(rotator, recorder)
            await rotator.get(lab.target_url("/ok"))
            await rotator.post(lab.target_url("/ok"), content=b"y" * 120)
            await rotator.get(lab.target_url("/404"))

    asyncio.run(run())
    assert both_ways == ["inline", "inline", "general"]
    events = _assert_same_events(recorder.calls)
    assert [event[3] for event in events] == [Outcome.SUCCESS, Outcome.SUCCESS, Outcome.HTTP_ERROR]
    assert events[1][5:9] == (200, len(OK_BODY), 120, 1)
