"""Proxy identities: an HMAC of the proxy's normalised address under the fleet key.

A proxy is known outside its fleet host only by ``HMAC-SHA256(fleet_key, address)``, truncated
to 32 lowercase hex characters (128 bits). The same address gives the same id in every process
on every host that shares the fleet key, and an unrelated id under another key.

Normalisation, so that spellings of one endpoint share an id: surrounding blanks, the scheme,
credentials and any path, query or fragment are removed; the host is lowercased (a trailing dot
dropped); IP addresses take their canonical form (IPv6 compressed, ``2001:db8::1``, and
bracketed when a port follows); the port loses leading zeros; a missing port is filled in
from the scheme when one was given (http 80, https 443, socks4/socks5 1080).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

from producer.errors import InvalidEvent

__all__ = ["ProxyIdHasher", "normalise_address"]

PROXY_ID_HEX_CHARS = 32
_DEFAULT_PORTS = {
    "http": "80",
    "https": "443",
    "socks4": "1080",
    "socks5": "1080",
    "socks5h": "1080",
}
_STRIP_TAIL_RE = re.compile(r"[/?#]")


def _split_host_port(rest: str) -> tuple[str, str]:
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise InvalidEvent("address", "unbalanced '[' in IPv6 address")
        host, tail = rest[1:end], rest[end + 1 :]
        if tail and not tail.startswith(":"):
            raise InvalidEvent("address", "unexpected text after ']'")
        return host, tail[1:]
    if rest.count(":") == 1:
        host, port = rest.split(":")
        return host, port
    return rest, ""


def normalise_address(address: str) -> str:
    """The canonical ``host[:port]`` form of a proxy address (see the module docstring)."""
    if not isinstance(address, str):
        raise InvalidEvent("address", "must be a string")
    text = address.strip()
    scheme = ""
    if "://" in text:
        scheme, text = text.split("://", 1)
        scheme = scheme.lower()
    text = _STRIP_TAIL_RE.split(text, maxsplit=1)[0]
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    host, port = _split_host_port(text)
    host = host.lower().rstrip(".")
    if not host:
        raise InvalidEvent("address", "has no host")
    is_v6 = False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        host = ip.compressed
        is_v6 = ip.version == 6
    if not port:
        port = _DEFAULT_PORTS.get(scheme, "")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidEvent("address", "port must be 1-65535")
        port = str(int(port))
        return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"
    return host


class ProxyIdHasher:
    """Computes proxy ids under one fleet key, caching the last ``cache_size`` addresses."""

    __slots__ = ("_cache", "_cache_size", "_key")

    def __init__(self, fleet_key: bytes, cache_size: int) -> None:
        self._key = fleet_key
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def __call__(self, address: str) -> str:
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        normalised = normalise_address(address)
        digest = hmac.new(self._key, normalised.encode(), hashlib.sha256).hexdigest()
        proxy_id = digest[:PROXY_ID_HEX_CHARS]
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[address] = proxy_id
        return proxy_id
