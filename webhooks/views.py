"""The endpoint Codat (through Svix) delivers webhooks to."""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from webhooks.services import webhook_event_receive
from webhooks.signatures import (
    ID_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    NoUsableSecret,
    verify_signature,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Kept with each event for the ledger. Never Authorization (Codat's optional custom header
# carries a credential) nor cookies.
STORED_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "content-type",
    "user-agent",
    "x-codat-clientid",
)


# The WSGI environ keys of STORED_HEADERS, looked up once: request.headers builds a
# case-insensitive copy of every header on each request, which the endpoint does not need.
_STORED_HEADER_KEYS = tuple(
    (name, "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_"))
    for name in STORED_HEADERS
)


def _rejected(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"accepted": False, "error": reason}, status=status)


@csrf_exempt  # Svix cannot send a CSRF token; the signature authenticates the request.
@require_POST
def codat_webhook(request):
    """Verify, store once under the webhook id, answer at once; a worker applies it later.

    4xx: missing, malformed, forged, stale or oversize (nothing stored).
    2xx: stored now, or already stored (a retry).
    503: the event could not be stored; Svix retries it.
    """
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _rejected(400, "invalid Content-Length")
    if declared_length > MAX_BODY_BYTES:
        return _rejected(413, "body too large")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _rejected(413, "body too large")

    meta = request.META
    headers = {name: meta[key] for name, key in _STORED_HEADER_KEYS if key in meta}
    try:
        verify_signature(body, headers, settings.CODAT_WEBHOOK_SECRETS)
    except NoUsableSecret:
        # Our configuration, not the sender's fault: a 5xx keeps Svix retrying until it is fixed.
        log.error("webhooks.receive.no_secrets")
        return _rejected(503, "webhook signing secrets are not configured")
    except InvalidSignature as error:
        log.info("webhooks.receive.rejected", extra={"reason": str(error)})
        return _rejected(400, f"signature not verified: {error}")

    webhook_id = headers.get(ID_HEADER) or headers.get("svix-id")
    text = body.decode("utf-8")
    if len(webhook_id) > 255 or "\x00" in text:
        return _rejected(400, "webhook id too long or body contains NUL")
    timestamp = headers.get(TIMESTAMP_HEADER) or headers.get("svix-timestamp")
    try:
        event_pk = webhook_event_receive(
            webhook_id=webhook_id,
            body=text,
            headers=headers,
            signed_at=datetime.fromtimestamp(float(timestamp), tz=UTC),
        )
    except DatabaseError:
        # Never a 2xx without a stored row: a 5xx makes Svix deliver it again later.
        log.exception("webhooks.receive.not_stored", extra={"webhook_id": webhook_id})
        response = _rejected(503, "event not stored, retry later")
        response["Retry-After"] = "30"
        return response
    if event_pk is None:
        return HttpResponse(status=200)
    return HttpResponse(status=202)
