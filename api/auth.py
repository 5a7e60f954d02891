"""Who may call what: named bearer tokens with roles, one FastAPI dependency per role.

Tokens come from :class:`api.settings.ApiSettings` (``tokens``: a name, the secret and its
roles). A router declares what it needs and nothing else::

    router = APIRouter(dependencies=[Depends(require_role(Role.INGEST))])

or, to know who called (the rules audit records ``api:<token name>``)::

    def put_rules(caller: Annotated[Caller, Depends(require_role(Role.ADMIN))]) -> ...

Policy:

- ``admin`` implies ``read`` and ``ingest``.
- Reads are open without a token only when the API is bound to a loopback address (unless
  ``read_open`` says otherwise); every other role always needs a token.
- A presented token is compared with every configured token in constant time
  (:func:`hmac.compare_digest` over SHA-256 digests, so neither content nor length leaks through
  timing), and a wrong token is refused even where reads are open.
- 401 (no or unknown token) and 403 (known token without the role) are problem+json with a
  ``WWW-Authenticate: Bearer`` challenge. Tokens are never logged nor echoed; refusals are counted
  (:class:`AuthCounters`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

if TYPE_CHECKING:
    from api.settings import ApiSettings

__all__ = [
    "ANONYMOUS",
    "AUTH_RESPONSES",
    "AuthCounters",
    "Authenticator",
    "Caller",
    "Role",
    "is_loopback",
    "require_role",
]

logger = logging.getLogger(__name__)

REALM = "proxywhirl-metrics"

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token where one is needed, or an unknown token (problem+json)"},
    403: {"description": "The token lacks the role (problem+json)"},
}
"""OpenAPI responses of a route behind :func:`require_role`."""


class Role(StrEnum):
    """What a token may do. ``admin`` implies the other two."""

    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"


def _expand(roles: Iterable[Role]) -> frozenset[Role]:
    held = frozenset(roles)
    return frozenset(Role) if Role.ADMIN in held else held


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a token's name and the roles it holds (admin expanded)."""

    name: str
    roles: frozenset[Role]
    authenticated: bool = True

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def actor(self) -> str:
        """The audit actor of this caller (``api:<token name>``)."""
        return f"api:{self.name}"


ANONYMOUS = Caller(name="anonymous", roles=frozenset({Role.READ}), authenticated=False)


@dataclass(slots=True)
class AuthCounters:
    """Refusals since start (``/metrics``)."""

    unauthenticated: int = 0
    invalid_token: int = 0
    forbidden: int = 0


@dataclass(frozen=True, slots=True)
class _Known:
    name: str
    digest: bytes
    roles: frozenset[Role]


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` only admits this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass(slots=True)
class Authenticator:
    """The token table and the read policy of one app."""

    reads_open: bool
    _known: tuple[_Known, ...] = ()
    counters: AuthCounters = field(default_factory=AuthCounters)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Authenticator:
        reads_open = settings.read_open
        if reads_open is None:
            reads_open = is_loopback(settings.host)
        known = tuple(
            _Known(t.name, _digest(t.token.get_secret_value()), _expand(t.roles))
            for t in settings.tokens
        )
        return cls(reads_open=reads_open, _known=known)

    @property
    def token_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self._known)

    def identify(self, presented: str) -> Caller | None:
        """The caller ``presented`` belongs to, or None. Every token is compared (no early exit)."""
        digest = _digest(presented)
        found: _Known | None = None
        for known in self._known:
            if hmac.compare_digest(digest, known.digest) and found is None:
                found = known
        return None if found is None else Caller(found.name, found.roles)

    def authorize(self, role: Role, credentials: HTTPAuthorizationCredentials | None) -> Caller:
        """The caller if it may act as ``role``; raises the 401/403 :class:`HTTPException`."""
        if credentials is None:
            if role is Role.READ and self.reads_open:
                return ANONYMOUS
            self.counters.unauthenticated += 1
            raise _challenge(401, f"a bearer token with the {role.value!r} role is required")
        caller = self.identify(credentials.credentials)
        if caller is None:
            self.counters.invalid_token += 1
            raise _challenge(401, "the bearer token is not valid", error="invalid_token")
        if not caller.has(role):
            self.counters.forbidden += 1
            logger.info("token %r refused: %s role needed", caller.name, role.value)
            raise _challenge(
                403,
                f"token {caller.name!r} lacks the {role.value!r} role",
                error="insufficient_scope",
            )
        return caller


def _challenge(status: int, detail: str, *, error: str | None = None) -> HTTPException:
    value = f'Bearer realm="{REALM}"'
    if error is not None:
        value += f', error="{error}"'
    return HTTPException(status_code=status, detail=detail, headers={"WWW-Authenticate": value})


_bearer = HTTPBearer(auto_error=False, description="A named API token (settings: tokens)")


def authenticator_of(request: Request) -> Authenticator:
    """The app's :class:`Authenticator` (installed by :func:`api.app.create_app`)."""
    auth = getattr(request.app.state, "authenticator", None)
    if not isinstance(auth, Authenticator):
        raise RuntimeError("the app has no Authenticator: build it with api.app.create_app")
    return auth


def require_role(role: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting callers that hold ``role``; it returns the :class:`Caller`.

    A malformed ``Authorization`` header (not ``Bearer <token>``) counts as no token. It runs
    on the event loop (a few hashes, no I/O), not in the thread pool.
    """

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        return authenticator_of(request).authorize(role, credentials)

    dependency.__name__ = f"require_{role.value}"
    return dependency
