"""`Authorization: Bearer <API key>` for DRF; the key's own user is the request's user."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from api.services import KeyRefused, api_key_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None  # no key: a staff session may still authenticate the request
        if len(parts) != 2:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <API key>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The API key is not valid.") from None
        try:
            key = api_key_authenticate(raw=raw)
        except KeyRefused as refusal:
            raise AuthenticationFailed(str(refusal)) from None
        return key.user, key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with this challenge) rather than 403 when no one is signed in.
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made by an admin in the portal's admin (API keys).",
        }
