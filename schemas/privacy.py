"""What a value must not look like: an address, a port, a credential, a URL, a path or a query.

No proxy IP, port, credential, URL path or query may leave a fleet host (docs/architecture.md).
The producer refuses such values before they are sent (:mod:`producer.privacy`); the decoders
of the stream app refuse them again on arrival (:mod:`schemas.wire`), so a third-party producer
cannot smuggle an address into storage as a pool, region or host label either. The reason names
the form found, never the value (the value is what must not leak, not even into a log).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["privacy_reason"]

_IPV4_RE = re.compile(r"(?<![0-9])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])")
_IPV6_CANDIDATE_RE = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_HOST_PORT_RE = re.compile(r"^.+:[0-9]{1,5}$")
_PATH_CHARS = ("/", "?", "#", "\\")
_ENCODED_PATH = ("%2f", "%3f", "%23", "%5c")


def _looks_like_ipv6(value: str) -> bool:
    if "::" in value:
        return True
    for candidate in _IPV6_CANDIDATE_RE.findall(value):
        for text in (candidate, candidate.rsplit(":", 1)[0]):
            try:
                ipaddress.IPv6Address(text.strip(":"))
            except ValueError:
                continue
            return True
    return False


def privacy_reason(value: str) -> str | None:
    """The forbidden form ``value`` looks like, or ``None`` if it is safe to send and store."""
    if "://" in value:
        return "looks like a URL (scheme://)"
    if "@" in value:
        return "looks like credentials (user:pass@)"
    if any(c in value for c in _PATH_CHARS):
        return "looks like a path or query ('/', '?', '#')"
    lowered = value.lower()
    if any(c in lowered for c in _ENCODED_PATH):
        return "looks like an encoded path or query ('%2F')"
    if "[" in value or "]" in value or _looks_like_ipv6(value):
        return "looks like an IPv6 address"
    if _IPV4_RE.search(value):
        return "looks like an IPv4 address"
    if _HOST_PORT_RE.match(value):
        return "looks like a host:port"
    return None
