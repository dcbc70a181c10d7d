"""The one way into the audit trail: `audit_record`, called by the services that change things
(and by the sign-in signals), never by views."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from audit.context import current
from audit.models import AuditEntry, Via


def _plain(value):
    """JSON-safe copy of a change's values (dates, UUIDs, model instances become text)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    return str(value)


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def audit_record(
    *,
    action: str,
    target=None,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    changes: dict | None = None,
    actor=None,
    actor_name: str = "",
    via: str | None = None,
    ip: str | None = None,
    api_key: str = "",
    people_only: bool = False,
) -> AuditEntry | None:
    """Record one action. Whatever is not given comes from who is acting now (audit/context.py):
    the signed-in staff member and the address of the request, or the API key the REST API
    names; with nobody acting, the portal itself.

    `target` is a model instance (its label, primary key and string become the entry's
    target), or give `target_type`/`target_id`/`target_label` for something that is not one.
    `people_only`: record it only when a person or an API key is acting, not the portal's own
    schedules (the hourly consumer list, consent's follow-up operations from a customer's grant).
    """
    acting = current()
    if actor is None and _signed_in(acting.user):
        actor = acting.user
    if not _signed_in(actor):
        actor = None
    if people_only and actor is None and not (api_key or acting.api_key):
        return None
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_label = target_label or str(target)
    return AuditEntry.objects.create(
        actor_id=actor.pk if actor is not None else None,
        actor=(actor.get_username() if actor is not None else actor_name)[:150],
        via=via or (acting.via if actor is not None or acting.api_key else Via.SYSTEM),
        api_key=(api_key or acting.api_key)[:100],
        ip=ip or acting.ip,
        action=action,
        target_type=target_type[:64],
        target_id=str(target_id)[:64],
        target=target_label[:255],
        changes=_plain(changes or {}),
    )
