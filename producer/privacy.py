"""Privacy and schema checks for the strings a producer sends (docs/architecture.md).

No proxy IP, port, credential, URL path or query may leave a fleet host. Every label (pool,
region, source host) and target domain is checked for those forms before its first use; a value
that passed is remembered in a bounded :class:`ValidatedCache`, so the hot path pays one set
lookup per field. The forms themselves are defined once, in :mod:`schemas.privacy`, which the
stream app's decoders apply again on arrival. Errors name the field and the form found, never
the value itself (the value is what must not leak, not even into a log shipped off the host).
"""

from __future__ import annotations

import re

from producer.errors import InvalidEvent, PrivacyViolation
from schemas.events import DOMAIN_PATTERN, LABEL_PATTERN, PROXY_ID_PATTERN
from schemas.privacy import privacy_reason

__all__ = [
    "ValidatedCache",
    "check_domain",
    "check_label",
    "check_proxy_id",
    "privacy_reason",
]

_LABEL_RE = re.compile(LABEL_PATTERN)
_DOMAIN_RE = re.compile(DOMAIN_PATTERN)
_PROXY_ID_RE = re.compile(PROXY_ID_PATTERN)


def check_label(field: str, value: object) -> str:
    """Return ``value`` if it is a safe label (pool, region, host); raise otherwise.

    Raises :class:`PrivacyViolation` for forbidden forms, :class:`InvalidEvent` for anything
    else that does not match :data:`schemas.events.LABEL_PATTERN`.
    """
    if not isinstance(value, str):
        raise InvalidEvent(field, "must be a string")
    reason = privacy_reason(value)
    if reason is not None:
        raise PrivacyViolation(field, reason)
    if _LABEL_RE.match(value) is None:
        raise InvalidEvent(field, f"must match {LABEL_PATTERN}")
    return value


def check_domain(field: str, value: object) -> str:
    """Return ``value`` if it is a bare domain name; raise like :func:`check_label`."""
    if not isinstance(value, str):
        raise InvalidEvent(field, "must be a string")
    reason = privacy_reason(value)
    if reason is not None:
        raise PrivacyViolation(field, reason)
    if _DOMAIN_RE.match(value) is None:
        raise InvalidEvent(field, f"must match {DOMAIN_PATTERN}")
    return value


def check_proxy_id(field: str, value: object) -> str:
    """Return ``value`` if it is a lowercase hex digest (what ``proxy_id()`` returns)."""
    if not isinstance(value, str):
        raise InvalidEvent(field, "must be a string")
    if _PROXY_ID_RE.match(value) is None:
        reason = privacy_reason(value)
        if reason is not None:
            raise PrivacyViolation(field, reason)
        raise InvalidEvent(field, "must be a lowercase hex digest from proxy_id(address)")
    return value


class ValidatedCache:
    """A bounded set of strings that already passed a check (values repeat endlessly).

    ``known`` is a plain set so the hot path can test membership without a call. When it
    reaches ``max_size`` it is cleared and refilled; set operations are atomic under the GIL,
    so concurrent emitters need no lock.
    """

    __slots__ = ("known", "max_size")

    def __init__(self, max_size: int) -> None:
        self.known: set[str] = set()
        self.max_size = max_size

    def remember(self, value: str) -> None:
        if len(self.known) >= self.max_size:
            self.known.clear()
        self.known.add(value)
