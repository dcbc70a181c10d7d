"""The audit trail's listeners: sign-ins, failed sign-ins and lockouts (Django's and
django-axes' signals), and the admin's own edit log, which covers every catalogue, text,
schedule and staff-account change made through the admin's forms in one place."""

import json

from axes.signals import user_locked_out
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_otp.forms import otp_verification_failed

from audit.context import client_ip
from audit.models import Via
from audit.services import audit_record

ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}


def _ip(request):
    return client_ip(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="audit.signed_in")
def record_sign_in(sender, request, user, **kwargs):
    device = getattr(user, "otp_device", None)
    second_factor = device.__class__.__name__ if device is not None else ""
    # A passkey signs in before django-otp marks the session verified with it, so the device
    # is not on the user yet: the backend that took the passkey says it.
    if not second_factor and getattr(user, "backend", "").endswith(".WebAuthnBackend"):
        second_factor = "WebAuthnCredential"
    audit_record(
        action="auth.signed_in",
        actor=user,
        via=Via.SESSION,
        ip=_ip(request),
        target=user,
        changes={"second_factor": second_factor},
    )


@receiver(user_logged_out, dispatch_uid="audit.signed_out")
def record_sign_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(
            action="auth.signed_out", actor=user, via=Via.SESSION, ip=_ip(request), target=user
        )


@receiver(user_login_failed, dispatch_uid="audit.sign_in_failed")
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    # Django has already blanked the password in `credentials`; only the name is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action="auth.sign_in_failed",
        actor_name=username,
        via=Via.SESSION,
        ip=_ip(request),
        target_type="auth.user",
        target_label=username,
    )


@receiver(otp_verification_failed, dispatch_uid="audit.second_factor_failed")
def record_failed_second_factor(sender, user, **kwargs):
    # The password was right and the code wrong: worth seeing, since the password is known.
    audit_record(
        action="auth.second_factor_failed",
        actor_name=user.get_username(),
        via=Via.SESSION,
        target=user,
    )


@receiver(user_locked_out, dispatch_uid="audit.locked_out")
def record_lockout(sender, request, username, ip_address, **kwargs):
    audit_record(
        action="auth.locked_out",
        actor_name=str(username or "")[:150],
        via=Via.SESSION,
        ip=ip_address or _ip(request),
        target_type="auth.user",
        target_label=str(username or ""),
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit.admin_log")
def record_admin_edit(sender, instance: LogEntry, created: bool, **kwargs):
    if not created:
        return
    try:
        message = json.loads(instance.change_message or "[]")
    except ValueError:
        message = instance.change_message
    audit_record(
        action=ADMIN_ACTIONS.get(instance.action_flag, "admin.logged"),
        actor=instance.user,
        target_type=instance.content_type.app_label + "." + instance.content_type.model
        if instance.content_type_id
        else "",
        target_id=instance.object_id or "",
        target_label=instance.object_repr,
        changes={"admin": message},
    )
