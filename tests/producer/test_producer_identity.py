"""Proxy ids: HMAC of the normalised address, stable across processes and hosts."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest
from producer_sink import FLEET_KEY, Sink, make_settings

from producer import InProcessTransport, MetricsProducer
from producer.identity import normalise_address

ADDRESSES = ["10.1.2.3:8080", "[2001:db8::1]:3128", "proxy-7.internal:1080"]


def _producer(**overrides: object) -> MetricsProducer:
    return MetricsProducer(make_settings(**overrides), InProcessTransport(Sink().deliver))


def test_proxy_id_is_a_truncated_hmac_sha256_of_the_address() -> None:
    producer = _producer()
    pid = producer.proxy_id("10.1.2.3:8080")
    producer.close()
    digest = hmac.new(FLEET_KEY.encode(), b"10.1.2.3:8080", hashlib.sha256).hexdigest()
    assert pid == digest[:32]
    assert len(pid) == 32
    assert pid == pid.lower()


def test_proxy_id_is_stable_across_processes() -> None:
    code = (
        "import sys\n"
        "from producer import MetricsProducer, ProducerSettings, InProcessTransport\n"
        "s = ProducerSettings(source_host='other-host', fleet_key=sys.argv[1],"
        " close_at_exit=False)\n"
        "p = MetricsProducer(s, InProcessTransport(lambda pool, b: None))\n"
        "print(' '.join(p.proxy_id(a) for a in sys.argv[2:]))\n"
        "p.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, FLEET_KEY, *ADDRESSES],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    producer = _producer()
    here = [producer.proxy_id(a) for a in ADDRESSES]
    producer.close()
    assert out == here
    assert len(set(here)) == len(ADDRESSES)


def test_another_fleet_key_gives_other_ids() -> None:
    first, second = _producer(), _producer(fleet_key="another-fleet-key-xyz")
    for address in ADDRESSES:
        assert first.proxy_id(address) != second.proxy_id(address)
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("10.1.2.3:8080", "10.1.2.3:8080"),
        ("  10.1.2.3:08080 ", "10.1.2.3:8080"),
        ("http://user:pw@10.1.2.3:8080/path?q=1", "10.1.2.3:8080"),
        ("http://10.1.2.3", "10.1.2.3:80"),
        ("https://Proxy.Example.COM.", "proxy.example.com:443"),
        ("socks5://[2001:0db8:0:0::1]:1080", "[2001:db8::1]:1080"),
        ("2001:db8::1", "2001:db8::1"),
        ("proxy.internal", "proxy.internal"),
    ],
)
def test_spellings_of_one_endpoint_share_an_id(spelling: str, canonical: str) -> None:
    assert normalise_address(spelling) == canonical
    producer = _producer()
    assert producer.proxy_id(spelling) == producer.proxy_id(canonical)
    producer.close()


def test_different_ports_are_different_proxies() -> None:
    producer = _producer()
    assert producer.proxy_id("10.1.2.3:8080") != producer.proxy_id("10.1.2.3:8081")
    producer.close()


@pytest.mark.parametrize("bad", ["", "http://", "10.1.2.3:99999", "10.1.2.3:http", "[::1"])
def test_unusable_addresses_raise_value_error(bad: str) -> None:
    producer = _producer()
    with pytest.raises(ValueError, match="address"):
        producer.proxy_id(bad)
    producer.close()


def test_ids_are_accepted_by_emit() -> None:
    sink = Sink()
    producer = MetricsProducer(make_settings(), InProcessTransport(sink.deliver))
    pids = [producer.proxy_id(a) for a in ADDRESSES]
    for pid in pids:
        assert producer.emit(pool="p", region="r", proxy_id=pid, latency_ms=2.0)
    producer.close()
    assert [ev.proxy_id for ev in sink.events] == pids
