"""The two kinds of link an SMB owner gets.

Consent link: a one-time bearer token of 256 bits from `secrets`; only its SHA-256 is stored.
Manage link: a signed, company-scoped value that keeps working after the consent link is
spent, so that withdrawing never depends on a link that no longer works (GDPR Art. 7(3)).
"""

import hashlib
import secrets

from django.conf import settings
from django.core import signing

from consent.errors import ConsentLinkInvalid

TOKEN_BYTES = 32
MANAGE_SALT = "consent.manage-link"


def token_new() -> tuple[str, str]:
    """A fresh token and the hash to store. The token itself is never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def manage_token_for(*, company) -> str:
    return signing.dumps({"company": company.pk}, salt=MANAGE_SALT)


def company_id_from_manage_token(value: str) -> int:
    try:
        payload = signing.loads(
            value, salt=MANAGE_SALT, max_age=settings.CONSENT_MANAGE_LINK_TTL.total_seconds()
        )
        return int(payload["company"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise ConsentLinkInvalid() from error
