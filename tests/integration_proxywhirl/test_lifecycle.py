"""instrument() / uninstrument(), strategy swaps, settings, and failures that must not hurt."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from proxywhirl import ProxyWhirl
from proxywhirl.strategies import RandomStrategy, RoundRobinStrategy

from producer import MetricsProducer
from producer.integrations.errors import AlreadyInstrumented, NotInstrumentable
from producer.integrations.proxywhirl import get_instrumentation, instrument
from schemas.events import Outcome
from tests.integration_proxywhirl.helpers import Capture, expected_proxy_id, sync_rotator
from tests.support.proxies import ProxyLab


def test_uninstrument_restores_the_rotator(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    user_strategy = rotator.strategy
    handle = instrument(rotator, producer)
    assert get_instrumentation(rotator) is handle
    assert "get" in vars(rotator)
    assert rotator.strategy is not user_strategy
    # The wrapper is transparent to code that inspects the strategy.
    assert isinstance(rotator.strategy, RoundRobinStrategy)
    assert rotator.strategy.__class__.__name__ == "RoundRobinStrategy"
    rotator.get(lab.target_url("/ok"))

    handle.uninstrument()
    handle.uninstrument()  # idempotent
    assert not handle.active
    assert get_instrumentation(rotator) is None
    assert rotator.strategy is user_strategy
    assert not any(name in vars(rotator) for name in ("get", "post", "head"))
    assert rotator.get.__func__ is ProxyWhirl.get  # type: ignore[attr-defined]
    rotator.get(lab.target_url("/ok"))
    assert producer.flush(timeout_s=5.0)
    assert len(capture.events()) == 1  # only the request made while instrumented


def test_a_method_reference_taken_before_uninstrument_stops_emitting(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    handle = instrument(rotator, producer)
    kept_get = rotator.get
    handle.uninstrument()
    assert kept_get(lab.target_url("/ok")).status_code == 200
    assert producer.flush(timeout_s=5.0)
    assert capture.events() == []


def test_an_instance_attribute_already_on_the_rotator_is_wrapped_and_restored(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    calls: list[str] = []
    class_get = rotator.get

    def users_own_get(url: str, **kwargs: Any) -> httpx.Response:
        calls.append(url)
        return class_get(url, **kwargs)

    rotator.get = users_own_get  # type: ignore[method-assign]
    handle = instrument(rotator, producer)
    assert rotator.get(lab.target_url("/ok")).status_code == 200
    handle.uninstrument()
    assert rotator.get is users_own_get
    assert len(calls) == 1
    assert producer.flush(timeout_s=5.0)
    assert len(capture.events()) == 1


def test_instrument_twice_is_refused_until_uninstrumented(
    lab: ProxyLab, producer: MetricsProducer
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    handle = instrument(rotator, producer)
    with pytest.raises(AlreadyInstrumented):
        instrument(rotator, producer)
    handle.uninstrument()
    second = instrument(rotator, producer)
    assert second.active
    assert type(rotator.strategy).__name__ == "ObservedStrategy"
    assert rotator.strategy.inner.__class__ is RoundRobinStrategy  # type: ignore[attr-defined]


def test_only_proxywhirl_rotators_are_accepted(producer: MetricsProducer) -> None:
    with httpx.Client() as client, pytest.raises(NotInstrumentable):
        instrument(client, producer)


def test_a_strategy_installed_later_is_wrapped_on_the_next_request(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    rotator.set_strategy(RandomStrategy())
    assert type(rotator.strategy) is RandomStrategy
    rotator.get(lab.target_url("/ok"))
    assert isinstance(rotator.strategy, RandomStrategy)
    assert type(rotator.strategy).__name__ == "ObservedStrategy"
    assert producer.flush(timeout_s=5.0)
    (event,) = capture.events()
    assert event.proxy_id == expected_proxy_id(lab.lab_proxies()["healthy"])


class ExplodingEmitter:
    """A producer whose emit() breaks its contract and raises (message quoting a URL)."""

    def __init__(self, real: MetricsProducer) -> None:
        self._real = real
        self.calls = 0

    def proxy_id(self, address: str) -> str:
        return self._real.proxy_id(address)

    def emit(self, *args: Any, **fields: Any) -> bool:
        self.calls += 1
        raise RuntimeError("emit exploded for http://127.0.0.1:9/secret?token=x")


async def test_instrumentation_failures_never_reach_the_request(
    lab: ProxyLab, producer: MetricsProducer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="producer.integrations")
    emitter = ExplodingEmitter(producer)
    rotator = sync_rotator(lab, ("healthy",))
    handle = instrument(rotator, emitter)
    for _ in range(3):
        assert rotator.get(lab.target_url("/ok")).status_code == 200
    assert emitter.calls == 3
    assert handle.stats().internal_errors == 3
    warnings = [r for r in caplog.records if r.name.startswith("producer.integrations")]
    assert len(warnings) == 1  # recurring: logged once per interval, counted always
    message = warnings[0].getMessage()
    assert "RuntimeError" in message
    assert "127.0.0.1" not in message
    assert "secret" not in message


def test_a_failing_strategy_swap_leaves_the_request_untouched(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    handle = instrument(rotator, producer)
    rotator.strategy = RandomStrategy()  # replaced behind set_strategy's back

    def broken_set_strategy(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot swap now")

    rotator.set_strategy = broken_set_strategy  # type: ignore[method-assign]
    assert rotator.get(lab.target_url("/ok")).status_code == 200
    assert handle.stats().internal_errors == 1
    assert producer.flush(timeout_s=5.0)
    assert capture.events() == []  # this one request went uninstrumented, untouched


def test_settings_come_from_the_environment_and_keywords_win(
    lab: ProxyLab,
    producer: MetricsProducer,
    capture: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PWM_PROXYWHIRL_POOL", "from-env")
    monkeypatch.setenv("PWM_PROXYWHIRL_REGION", "env-region")
    rotator = sync_rotator(lab, ("dead",))  # untagged: pool and region are the defaults
    handle = instrument(rotator, producer, region="kw-region")
    assert (handle.settings.pool, handle.settings.region) == ("from-env", "kw-region")
    with pytest.raises(Exception, match="Request failed"):
        rotator.get(lab.target_url("/ok"))
    assert producer.flush(timeout_s=5.0)
    (event,) = capture.events()
    assert (event.pool, event.region, event.outcome) == (
        "from-env",
        "kw-region",
        Outcome.CONNECTION_ERROR,
    )


@pytest.mark.parametrize("pool", ["10.1.2.3", "proxy.example:8080", "a/b", ""])
def test_unsafe_default_labels_are_refused_at_instrument_time(
    lab: ProxyLab, producer: MetricsProducer, pool: str
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    with pytest.raises(ValueError, match="pool"):
        instrument(rotator, producer, pool=pool)
    assert get_instrumentation(rotator) is None
    assert "get" not in vars(rotator)
