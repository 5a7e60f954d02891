"""Pool, region and proxy id of a ProxyWhirl proxy; the target's domain."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proxywhirl import Proxy
from pydantic import SecretStr

from producer import InProcessTransport, MetricsProducer, ProducerSettings
from producer.integrations.proxywhirl_labels import (
    ProxyLabeler,
    ProxyLabels,
    TargetDomains,
    proxy_address,
    target_domain,
)
from producer.integrations.proxywhirl_settings import ProxyWhirlSettings
from tests.integration_proxywhirl.helpers import FLEET_KEY


def _producer(host: str, key: str = FLEET_KEY) -> MetricsProducer:
    settings = ProducerSettings(source_host=host, fleet_key=key, close_at_exit=False)
    return MetricsProducer(settings, InProcessTransport(lambda pool, payload: None))


@pytest.fixture
def producer_a() -> Iterator[MetricsProducer]:
    producer = _producer("host-a")
    yield producer
    producer.close()


def _labeler(producer: MetricsProducer, **settings: object) -> ProxyLabeler:
    return ProxyLabeler(
        ProxyWhirlSettings(pool="fallback-pool", region="fallback-region", **settings),  # type: ignore[arg-type]
        producer.proxy_id,
    )


def _proxy(url: str = "http://203.0.113.7:3128", **fields: Any) -> Proxy:
    # 203.0.113.0/24 is a documentation range, which ProxyWhirl refuses unless allow_local.
    return Proxy(url=url, allow_local=True, **fields)


@pytest.mark.parametrize(
    ("fields", "pool", "region"),
    [
        ({}, "fallback-pool", "fallback-region"),
        ({"tags": {"pool:eu-res", "other"}}, "eu-res", "fallback-region"),
        ({"tags": {"pool:zz", "pool:aa"}}, "aa", "fallback-region"),
        ({"country_code": "DE"}, "fallback-pool", "DE"),
        ({"country_code": "US", "region": "New York"}, "fallback-pool", "New-York"),
        ({"region": "  São Paulo / SP  "}, "fallback-pool", "S-o-Paulo-SP"),
        (
            {"tags": {"region:ap-south"}, "region": "x", "country_code": "IN"},
            "fallback-pool",
            "ap-south",
        ),
        # An invalid tag or a region that looks like an address is skipped, never sent.
        ({"tags": {"pool:10.0.0.1"}}, "fallback-pool", "fallback-region"),
        ({"region": "10.0.0.1", "country_code": "FR"}, "fallback-pool", "FR"),
    ],
)
def test_pool_and_region(
    producer_a: MetricsProducer, fields: dict[str, Any], pool: str, region: str
) -> None:
    labels = _labeler(producer_a).labels(_proxy(**fields))
    assert (labels.pool, labels.region) == (pool, region)


def test_invalid_labels_are_counted(producer_a: MetricsProducer) -> None:
    labeler = _labeler(producer_a)
    labeler.labels(_proxy(tags={"pool:bad/name", "region:1.2.3.4"}))
    assert labeler.invalid_labels == 2


def test_custom_tag_prefixes(producer_a: MetricsProducer) -> None:
    labeler = _labeler(producer_a, pool_tag_prefix="p=", region_tag_prefix="r=")
    labels = labeler.labels(_proxy(tags={"p=mobile", "r=latam", "pool:ignored"}))
    assert (labels.pool, labels.region) == ("mobile", "latam")


def test_no_proxy_gives_the_defaults(producer_a: MetricsProducer) -> None:
    assert _labeler(producer_a).labels(None) == ProxyLabels(
        "fallback-pool", "fallback-region", None
    )


def test_proxy_id_ignores_credentials_and_spelling(producer_a: MetricsProducer) -> None:
    labeler = _labeler(producer_a)
    plain = labeler.labels(_proxy("http://203.0.113.7:3128")).proxy_id
    with_creds = labeler.labels(
        _proxy(
            "http://user:pw@203.0.113.7:3128",
            username=SecretStr("u"),
            password=SecretStr("p"),
        )
    ).proxy_id
    assert plain is not None
    assert plain == with_creds
    assert labeler.labels(_proxy("http://203.0.113.7:3129")).proxy_id != plain
    assert labeler.labels(_proxy("http://proxy.example.net")).proxy_id == (
        labeler.labels(_proxy("http://PROXY.example.net:80/")).proxy_id
    )


def test_proxy_id_is_the_same_on_other_hosts_and_processes(producer_a: MetricsProducer) -> None:
    ours = _labeler(producer_a).labels(_proxy()).proxy_id
    other_host = _producer("host-b")
    other_key = _producer("host-c", key="another-fleet-key-000")
    try:
        assert _labeler(other_host).labels(_proxy()).proxy_id == ours
        assert _labeler(other_key).labels(_proxy()).proxy_id != ours
    finally:
        other_host.close()
        other_key.close()
    # A fresh interpreter (new Proxy.id UUIDs, new caches) computes the same id.
    script = (
        "import types, uuid\n"
        "from producer import InProcessTransport, MetricsProducer, ProducerSettings\n"
        "from producer.integrations.proxywhirl_labels import ProxyLabeler\n"
        "from producer.integrations.proxywhirl_settings import ProxyWhirlSettings\n"
        f"s = ProducerSettings(source_host='z', fleet_key={FLEET_KEY!r}, close_at_exit=False)\n"
        "p = MetricsProducer(s, InProcessTransport(lambda pool, payload: None))\n"
        "proxy = types.SimpleNamespace(url='http://203.0.113.7:3128', id=uuid.uuid4(),\n"
        "                              tags=set(), region=None, country_code=None)\n"
        "print(ProxyLabeler(ProxyWhirlSettings(), p.proxy_id).labels(proxy).proxy_id)\n"
        "p.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ours


def test_labels_follow_changes_to_the_proxy(producer_a: MetricsProducer) -> None:
    labeler = _labeler(producer_a)
    proxy = _proxy(tags={"pool:one"})
    assert labeler.labels(proxy).pool == "one"
    proxy.tags = {"pool:two"}
    assert labeler.labels(proxy).pool == "two"
    proxy.country_code = "JP"
    assert labeler.labels(proxy).region == "JP"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://u:p@10.1.2.3:8080/path?q=1", "http://10.1.2.3:8080"),
        ("socks5://[2001:db8::1]:1080", "socks5://[2001:db8::1]:1080"),
        ("HTTP://Proxy.Example:3128#frag", "http://Proxy.Example:3128"),
        ("10.0.0.1:3128", "10.0.0.1:3128"),
    ],
)
def test_proxy_address_drops_credentials_and_path(url: str, address: str) -> None:
    assert proxy_address(url) == address


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://Shop.Example.COM:8443/cart?id=7", "shop.example.com"),
        ("http://example.org./", "example.org"),
        ("http://127.0.0.1:8080/x", None),
        ("http://[2001:db8::1]/", None),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("not a url", None),
        ("http://user:pw@host.example/", "host.example"),
    ],
)
def test_target_domain(url: str, domain: str | None) -> None:
    assert target_domain(url) == domain
    assert TargetDomains()(url) == domain


_HOSTS = st.sampled_from(
    ["Shop.Example.COM", "example.org.", "127.0.0.1", "[2001:db8::1]", "bücher.example", "a", ""]
)
_URLS = st.builds(
    lambda scheme, userinfo, host, port, rest: f"{scheme}{userinfo}{host}{port}{rest}",
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
    st.sampled_from(["", "user:pw@", "u@"]),
    _HOSTS,
    st.sampled_from(["", ":8443", ":x"]),
    st.sampled_from(["", "/", "/cart/7?id=1", "?q=/x", "#frag/x", "/a#b", "//double"]),
)


@given(st.lists(_URLS, min_size=1, max_size=30))
def test_remembered_domains_equal_target_domain(urls: list[str]) -> None:
    domains = TargetDomains(max_size=4)  # small: the memory is cleared and refilled too
    for url in urls + urls[::-1]:
        assert domains(url) == target_domain(url), url
