"""Which scope each endpoint needs; whether the caller has it is core/roles.py's answer."""

from rest_framework.permissions import BasePermission

from api.models import ApiKey
from core.roles import SCOPE_READ, api_allows, api_scopes_of_staff


def scopes_of(request) -> frozenset[str]:
    if isinstance(request.auth, ApiKey):
        return request.auth.scope_set
    return api_scopes_of_staff(request.user)


def needed_scope(view, method: str) -> str:
    """A view says `scopes = {"GET": "read", "POST": "operate"}`; reads need `read` by default."""
    return getattr(view, "scopes", {}).get(method, SCOPE_READ)


class HasApiScope(BasePermission):
    def has_permission(self, request, view):
        method = "GET" if request.method == "OPTIONS" else request.method
        needed = needed_scope(view, method)
        if api_allows(scopes=scopes_of(request), needed=needed):
            return True
        self.message = f"This needs the '{needed}' scope."
        return False
