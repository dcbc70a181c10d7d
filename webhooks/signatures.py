"""Verifying Codat's (Svix's) Standard Webhooks signatures against several secrets."""

import functools
import logging
from collections.abc import Mapping, Sequence

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

log = logging.getLogger(__name__)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# Svix's own names; Codat's docs use the unbranded webhook-* ones. Either may arrive.
SVIX_NAMES = {
    ID_HEADER: "svix-id",
    TIMESTAMP_HEADER: "svix-timestamp",
    SIGNATURE_HEADER: "svix-signature",
}


class InvalidSignature(Exception):
    """Missing, malformed, forged or stale: the sender gets a 4xx."""


def standard_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The three signature headers under their webhook-* names, whichever prefix was sent.

    `headers` must find lower-case names: a dict keyed by them, or a case-insensitive mapping
    such as Django's `request.headers`.
    """
    found = {}
    for name, svix_name in SVIX_NAMES.items():
        value = headers.get(name) or headers.get(svix_name)
        if value:
            found[name] = value
    return found


class NoUsableSecret(Exception):
    """CODAT_WEBHOOK_SECRETS holds no secret that can be used: nothing can be verified."""


@functools.lru_cache(maxsize=8)
def _verifiers(secrets: tuple[str, ...]) -> tuple[Webhook, ...]:
    verifiers = []
    for position, secret in enumerate(secrets):
        try:
            verifiers.append(Webhook(secret))
        except (EmptyWebhookSecretError, ValueError):
            # A typo in one secret must not stop the others from verifying; never log the value.
            log.error("webhooks.secret_unusable", extra={"position": position})
    return tuple(verifiers)


def verify_signature(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raise InvalidSignature unless one of `secrets` signed `body` within the last 5 minutes.

    Several secrets let a secret be rotated without a gap. standardwebhooks fixes the window at
    5 minutes either way, and raises ValueError (binascii.Error is one) or UnicodeDecodeError on
    some malformed input instead of its own error: every one of them means "not verified".
    """
    verifiers = _verifiers(tuple(secrets))
    if not verifiers:
        raise NoUsableSecret("no usable secret in CODAT_WEBHOOK_SECRETS")
    signature_headers = standard_headers(headers)
    if len(signature_headers) != len(SVIX_NAMES):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidSignature("body is not UTF-8") from error
    last_reason = "no matching signature"
    for verifier in verifiers:
        try:
            verifier.verify(text, signature_headers, json_parse=False)
        except WebhookVerificationError as error:
            last_reason = str(error)
            if last_reason != "No matching signature found":
                # Missing, unreadable or stale headers fail the same way for every secret.
                break
            continue
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidSignature(f"malformed signature header: {error}") from error
        return
    raise InvalidSignature(last_reason)
