"""Labels of a ProxyWhirl proxy: its pool, region and privacy-safe id; the target's domain.

* pool: the proxy's ``<pool_tag_prefix><name>`` tag (``pool:eu-residential``; the smallest
  name if it has several), else the configured ``pool``. ProxyWhirl's own pool is always
  named "default", so it carries no information.
* region: the proxy's ``<region_tag_prefix><name>`` tag, else its ``region``, else its
  ``country_code``, else the configured ``region``. ``region`` and ``country_code`` are free
  text in ProxyWhirl: characters a label may not hold become ``-`` (``New York`` ->
  ``New-York``); a tag must already be a valid label. A value that is still not a valid label,
  or looks like an address, is skipped (and counted in ``invalid_labels``).
* proxy id: ``producer.proxy_id()`` of the proxy's address (scheme, host and port; never its
  credentials), i.e. an HMAC under the fleet key: the same on every host and in every process,
  unlike ProxyWhirl's ``Proxy.id``, a random UUID per process.
* target domain: the request URL's host name, lowercased, without port, path or query; IP
  literals and names that are not valid domains give ``None``.

Labels are computed once per proxy and cached; the cache entry is recomputed when the proxy's
URL, region, country or tags change. :class:`TargetDomains` remembers the domain of each
``http(s)://`` scheme and authority seen, so a request pays one slice and one dict lookup.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from producer.integrations.proxywhirl_settings import ProxyWhirlSettings
from producer.privacy import check_domain, check_label

__all__ = ["ProxyLabeler", "ProxyLabels", "TargetDomains", "proxy_address", "target_domain"]

_UNSAFE_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
_LABEL_EDGE_CHARS = "-_.:"
MAX_LABEL_CHARS = 64
_NO_TAGS: frozenset[Any] = frozenset()


class ProxyLabels(NamedTuple):
    """The event fields that describe the proxy that served a request."""

    pool: str
    region: str
    proxy_id: str | None


def proxy_address(url: str) -> str:
    """``scheme://host:port`` of a proxy URL: credentials, path, query and fragment removed."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "", scheme
    for stop in "/?#":
        rest = rest.split(stop, 1)[0]
    host_port = rest.rpartition("@")[2]
    return f"{scheme.lower()}://{host_port}" if scheme else host_port


def target_domain(url: object) -> str | None:
    """The domain a request URL targets, or ``None`` (see the module docstring)."""
    try:
        host = urlsplit(str(url)).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    try:
        return check_domain("target_domain", host)
    except ValueError:
        return None


class TargetDomains:
    """:func:`target_domain` of request URLs, remembered per scheme and authority (at most
    ``max_size`` of them; the memory is cleared when full)."""

    __slots__ = ("_known", "_max_size")

    def __init__(self, max_size: int = 4096) -> None:
        self._known: dict[str, str | None] = {}
        self._max_size = max_size

    def __call__(self, url: object) -> str | None:
        if type(url) is not str or not url.startswith(("http://", "https://")):
            return target_domain(url)
        # The authority ends at the first "/" after "https://" (or at a "?" or "#" before it,
        # which then stays in the key: same host, a key of its own).
        end = url.find("/", 8)
        head = url if end < 0 else url[:end]
        try:
            return self._known[head]
        except KeyError:
            pass
        domain = target_domain(head)
        if len(self._known) >= self._max_size:
            self._known.clear()
        self._known[head] = domain
        return domain


def _sanitised(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = _UNSAFE_LABEL_CHARS.sub("-", value.strip()).strip(_LABEL_EDGE_CHARS)
    return text[:MAX_LABEL_CHARS].rstrip(_LABEL_EDGE_CHARS) or None


class ProxyLabeler:
    """Computes and caches :class:`ProxyLabels` per proxy."""

    def __init__(self, settings: ProxyWhirlSettings, proxy_id: Callable[[str], str]) -> None:
        self._settings = settings
        self._proxy_id = proxy_id
        # id(proxy) -> (proxy, url, region, country, tags, labels); the proxy itself is kept so
        # an id reused by another object cannot match.
        self._cache: dict[int, tuple[Any, Any, Any, Any, frozenset[Any], ProxyLabels]] = {}
        self.default = ProxyLabels(settings.pool, settings.region, None)
        self.invalid_labels = 0
        """Tag, region or country values skipped because they were not valid, safe labels."""
        self.invalid_addresses = 0
        """Proxies whose URL had no usable host or port (their events carry no proxy id)."""

    def labels(self, proxy: Any) -> ProxyLabels:
        """The labels of ``proxy`` (a ``proxywhirl.Proxy``); ``default`` when it is ``None``."""
        if proxy is None:
            return self.default
        cached = self._cache.get(id(proxy))
        try:  # a ProxyWhirl Proxy has them all; anything else takes the getattr path below
            url, region, country = proxy.url, proxy.region, proxy.country_code
            tags = proxy.tags or _NO_TAGS
        except AttributeError:
            url = getattr(proxy, "url", None)
            region = getattr(proxy, "region", None)
            country = getattr(proxy, "country_code", None)
            tags = getattr(proxy, "tags", None) or _NO_TAGS
        # The request path: compare in place (a frozenset equals a set with the same items).
        if (
            cached is not None
            and cached[0] is proxy
            and cached[1] == url
            and cached[2] == region
            and cached[3] == country
            and cached[4] == tags
        ):
            return cached[5]
        frozen_tags = frozenset(tags)
        labels = self._compute(url, region, country, frozen_tags)
        if len(self._cache) >= self._settings.label_cache_size:
            self._cache.clear()
        self._cache[id(proxy)] = (proxy, url, region, country, frozen_tags, labels)
        return labels

    def _compute(self, url: Any, region: Any, country: Any, tags: frozenset[Any]) -> ProxyLabels:
        settings = self._settings
        tag_list: list[str] = sorted(t for t in tags if isinstance(t, str))
        pool = self._first_label(
            "pool",
            [
                t[len(settings.pool_tag_prefix) :]
                for t in tag_list
                if t.startswith(settings.pool_tag_prefix)
            ],
        )
        region_tags = [
            t[len(settings.region_tag_prefix) :]
            for t in tag_list
            if t.startswith(settings.region_tag_prefix)
        ]
        region_label = self._first_label(
            "region", [*region_tags, _sanitised(region), _sanitised(country)]
        )
        proxy_id: str | None = None
        if isinstance(url, str):
            try:
                proxy_id = self._proxy_id(proxy_address(url))
            except ValueError:
                self.invalid_addresses += 1
        else:
            self.invalid_addresses += 1
        return ProxyLabels(pool or settings.pool, region_label or settings.region, proxy_id)

    def _first_label(self, field: str, candidates: list[str | None]) -> str | None:
        for candidate in candidates:
            if candidate is None:
                continue
            try:
                return check_label(field, candidate)
            except ValueError:
                self.invalid_labels += 1
        return None
