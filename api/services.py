"""Making, revoking and checking API keys."""

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from api.models import ApiKey
from core.roles import API_SCOPES

logger = logging.getLogger(__name__)

KEY_MARK = "cpk"
# last_used_at is written at most this often per key: not one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_prefix_of(raw: str) -> str:
    """'cpk_1a2b3c4d_…' -> 'cpk_1a2b3c4d'; '' for anything not shaped like a key."""
    mark, _, rest = raw.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != KEY_MARK or len(prefix) != 8 or not secret:
        return ""
    return f"{mark}_{prefix}"


@transaction.atomic
def api_key_create(
    *, name: str, scopes, expires_at: datetime | None = None, created_by=None
) -> tuple[ApiKey, str]:
    """Make a key; the raw key is returned here once and stored nowhere."""
    scopes = sorted(set(scopes))
    unknown = [scope for scope in scopes if scope not in API_SCOPES]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}."})
    if not scopes:
        raise ValidationError({"scopes": "Give the key at least one scope."})
    now = timezone.now()
    if expires_at is None:
        from django.conf import settings

        expires_at = now + timedelta(days=settings.API_KEY_DEFAULT_DAYS)
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    prefix = f"{KEY_MARK}_{secrets.token_hex(4)}"
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    # The key's own user: the actor every record of its writes names (see api/models.py).
    user = get_user_model().objects.create(
        username=f"api-key-{prefix}",
        first_name=f"API key {prefix} ({name})"[:150],
        is_active=False,
        is_staff=False,
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=key_hash(raw),
        scopes=scopes,
        user=user,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    key.full_clean(exclude=["user"])
    key.save()
    logger.info("api_key.created", extra={"prefix": prefix, "scopes": scopes})
    return key, raw


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke a key now; True if it was live. Its records keep naming it."""
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        logger.info("api_key.revoked", extra={"prefix": key.prefix})
    return bool(revoked)


class KeyRefused(Exception):
    """The key is unknown, revoked or expired; the message says which."""


def api_key_authenticate(*, raw: str, now: datetime | None = None) -> ApiKey:
    """The live key `raw` is, with its last use recorded; KeyRefused otherwise."""
    now = now or timezone.now()
    prefix = key_prefix_of(raw)
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
    # Compared in constant time, and the same answer whether the prefix or the rest is wrong.
    if key is None or not hmac.compare_digest(key.key_hash, key_hash(raw)):
        raise KeyRefused("The API key is not valid.")
    if key.revoked_at is not None:
        raise KeyRefused(f"The API key {prefix} was revoked.")
    if key.is_expired(now):
        raise KeyRefused(f"The API key {prefix} expired at {key.expires_at:%Y-%m-%dT%H:%M:%SZ}.")
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return key
