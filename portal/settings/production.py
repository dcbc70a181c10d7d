"""Production settings: DEBUG off, HTTPS only, secure cookies; `check --deploy` is clean.

They refuse to start with what only suits a laptop: the local sandbox or plain HTTP as Codat,
no Codat API key, or a consent address that customers cannot reach over HTTPS.
"""

import ipaddress
import os
from urllib.parse import urlsplit

os.environ["DEBUG"] = "0"

from django.core.exceptions import ImproperlyConfigured

from portal.settings.base import *  # noqa: F403
from portal.settings.base import CODAT_API_KEY, CODAT_BASE_URL, CONSENT_BASE_URL, env

# Every staff account signs in with a second factor (STAFF_REQUIRE_2FA=0 turns it off).
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=True)
# Passkeys are bound to the portal's public address (the one consent links use), unless told
# otherwise: its host name is the relying party, its origin the one passkeys are used at.
_PUBLIC = urlsplit(CONSENT_BASE_URL)
OTP_WEBAUTHN_RP_ID = env.str("OTP_WEBAUTHN_RP_ID", default=_PUBLIC.hostname or "")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS", default=[f"{_PUBLIC.scheme}://{_PUBLIC.netloc}"]
)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 60 * 60
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def unsafe_for_production(
    *, codat_base_url: str, codat_api_key: str, consent_base_url: str
) -> list[str]:
    """What in these values only suits a development machine, one sentence each."""
    problems = []
    codat = urlsplit(codat_base_url)
    if _is_local(codat.hostname or ""):
        problems.append(
            f"CODAT_BASE_URL is {codat_base_url!r}, the local sandbox; set Codat's API, "
            "https://api.codat.io."
        )
    elif codat.scheme != "https":
        problems.append(f"CODAT_BASE_URL is {codat_base_url!r}: Codat is called over HTTPS only.")
    if not codat_api_key.strip():
        problems.append("CODAT_API_KEY is empty; set the API key from Codat's Portal.")
    consent = urlsplit(consent_base_url)
    if consent.scheme != "https" or _is_local(consent.hostname or ""):
        problems.append(
            f"CONSENT_BASE_URL is {consent_base_url!r}; consent links, e-mails and receipts "
            "need the portal's public HTTPS address."
        )
    return problems


_problems = unsafe_for_production(
    codat_base_url=CODAT_BASE_URL,
    codat_api_key=CODAT_API_KEY,
    consent_base_url=CONSENT_BASE_URL,
)
if _problems:
    raise ImproperlyConfigured(
        "Production settings refuse to start: "
        + " ".join(_problems)
        + " (On a development machine, `make run` uses portal.settings.dev.)"
    )
