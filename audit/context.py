"""Who is acting, for the audit trail, without passing it through every service's signature.

The middleware sets it for each browser request; the REST API sets it for a request signed
with an API key (`acting(via=Via.API_KEY, api_key=...)`); commands and tasks leave it empty
and are recorded as the portal itself.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

from audit.models import Via


@dataclass(frozen=True)
class Acting:
    user: object | None = None
    via: str = Via.SYSTEM
    ip: str | None = None
    api_key: str = ""


NOBODY = Acting()
_current: contextvars.ContextVar[Acting | None] = contextvars.ContextVar(
    "audit_acting", default=None
)


def current() -> Acting:
    return _current.get() or NOBODY


@contextmanager
def acting(*, user=None, via: str = Via.SYSTEM, ip: str | None = None, api_key: str = ""):
    token = _current.set(Acting(user=user, via=via, ip=ip, api_key=api_key))
    try:
        yield
    finally:
        _current.reset(token)


def client_ip(request) -> str | None:
    # REMOTE_ADDR is already the client behind trusted proxies (portal/proxies.py).
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    """Names the signed-in staff member and the address for whatever the request changes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # The user is read lazily: services ask only when they record something.
        with acting(user=user, via=Via.SESSION, ip=client_ip(request)):
            return self.get_response(request)
