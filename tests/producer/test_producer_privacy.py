"""No proxy IP, port, credential, URL path or query ever leaves a fleet host."""

from __future__ import annotations

import pytest
from producer_sink import Sink, make_settings

from producer import InProcessTransport, MetricsProducer, PrivacyViolation
from producer.privacy import ValidatedCache, check_domain, check_label, privacy_reason

FORBIDDEN = [
    pytest.param("10.1.2.3", "IPv4", id="ipv4"),
    pytest.param("10.1.2.3:8080", "IPv4", id="ipv4-port"),
    pytest.param("pool-192.168.0.1", "IPv4", id="ipv4-embedded"),
    pytest.param("2001:db8::1", "IPv6", id="ipv6"),
    pytest.param("fe80:0:0:0:202:b3ff:fe1e:8329", "IPv6", id="ipv6-full"),
    pytest.param("[2001:db8::1]:443", "IPv6", id="ipv6-bracket-port"),
    pytest.param("::ffff:10.0.0.1", "IPv6", id="ipv4-mapped-ipv6"),
    pytest.param("proxy.example.com:3128", "host:port", id="host-port"),
    pytest.param("localhost:80", "host:port", id="name-port"),
    pytest.param("http://proxy.example.com", "URL", id="url"),
    pytest.param("socks5://10.0.0.1:1080", "URL", id="url-socks"),
    pytest.param("user:secret@proxy", "credentials", id="credentials"),
    pytest.param("user@proxy", "credentials", id="user-at"),
    pytest.param("api/v1", "path", id="path"),
    pytest.param("search?q=secret", "path or query", id="query"),
    pytest.param("page#frag", "path or query", id="fragment"),
    pytest.param("a%2Fb", "encoded path", id="encoded-slash"),
    pytest.param("a%2fb", "encoded path", id="encoded-slash-lower"),
]

ALLOWED_LABELS = ["pool-a", "eu-west-1", "residential.v2", "pool_1.2.3", "a:b", "US"]


@pytest.mark.parametrize("field", ["pool", "region", "target_domain"])
@pytest.mark.parametrize(("value", "form"), FORBIDDEN)
def test_emit_rejects_each_forbidden_form(field: str, value: str, form: str) -> None:
    sink = Sink()
    producer = MetricsProducer(make_settings(), InProcessTransport(sink.deliver))
    args: dict[str, object] = {"pool": "pool-a", "region": "eu", "latency_ms": 1.0}
    args[field] = value
    assert not producer.emit(**args)  # type: ignore[arg-type]
    producer.close()
    stats = producer.stats()
    assert stats.rejected == stats.rejected_privacy == 1
    assert stats.rejected_by_field == {field: 1}
    assert sink.events == []


@pytest.mark.parametrize(("value", "form"), FORBIDDEN)
def test_errors_name_the_field_and_the_form_but_not_the_value(value: str, form: str) -> None:
    with pytest.raises(PrivacyViolation) as info:
        check_label("region", value)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "region"
    assert str(info.value).startswith("region: ")
    assert form.lower() in str(info.value).lower()
    assert value not in str(info.value)


@pytest.mark.parametrize(("value", "form"), FORBIDDEN)
def test_settings_reject_a_forbidden_source_host(value: str, form: str) -> None:
    with pytest.raises(ValueError, match="source_host") as info:
        make_settings(source_host=value)
    assert form.lower() in str(info.value).lower()
    assert value not in str(info.value)  # not even in a local traceback


@pytest.mark.parametrize(
    "proxy_id",
    [
        "10.1.2.3:8080",
        "10.1.2.3",
        "ABCDEF0123456789ABCDEF0123456789",  # upper case: not what proxy_id() returns
        "abc",  # too short to be a digest
        "g" * 32,
        "http://10.0.0.1",
    ],
)
def test_proxy_id_must_be_a_lowercase_hex_digest(proxy_id: str) -> None:
    producer = MetricsProducer(make_settings(), InProcessTransport(Sink().deliver))
    assert not producer.emit(pool="p", region="r", proxy_id=proxy_id, latency_ms=1.0)
    producer.close()
    assert producer.stats().rejected_by_field == {"proxy_id": 1}


@pytest.mark.parametrize("value", ALLOWED_LABELS)
def test_ordinary_labels_pass(value: str) -> None:
    assert privacy_reason(value) is None
    assert check_label("pool", value) == value


@pytest.mark.parametrize("value", ["example.com", "api.example.co.uk", "xn--bcher-kva.example"])
def test_bare_domains_pass(value: str) -> None:
    assert check_domain("target_domain", value) == value


def test_validated_values_are_cached_and_the_cache_is_bounded() -> None:
    cache = ValidatedCache(16)
    for i in range(100):
        cache.remember(f"pool-{i}")
        assert len(cache.known) <= 16
    assert "pool-99" in cache.known


def test_fleet_key_is_secret_in_reprs() -> None:
    settings = make_settings()
    assert settings.fleet_key.get_secret_value() not in repr(settings)
