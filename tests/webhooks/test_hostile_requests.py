"""Hostile requests are refused with a 4xx and leave nothing behind; the known-answer vector and
secret rotation behave as Svix's do."""

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.webhooks.conftest import ENDPOINT, as_django_headers, new_secret, signature_headers
from webhooks.models import EventState, WebhookEvent


def valid_body() -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "eventType": "company.deleted",
            "generatedDate": datetime.now(tz=UTC).isoformat(),
            "payload": {"id": str(uuid.uuid4()), "name": "Toft stores"},
        }
    )


def raw_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def hostile_requests(secret: str):
    """(name, body bytes, headers) for every kind of bad delivery, each freshly made."""

    def now():
        return datetime.now(tz=UTC)

    def signed(body=None, **kwargs):
        body = body or valid_body()
        return body.encode(), signature_headers(body, secret, **kwargs)

    def without(name):
        body, headers = signed()
        del headers[name]
        return body, headers

    def with_signature(value):
        body, headers = signed()
        headers["webhook-signature"] = value
        return body, headers

    def with_timestamp(value):
        body, headers = signed()
        headers["webhook-timestamp"] = value
        return body, headers

    def altered_by_one_byte():
        body, headers = signed()
        return body.replace(b"Toft", b"Tofu"), headers

    def mixed_messages():
        body, headers = signed()
        _, other = signed()
        return body, {
            "svix-id": other["webhook-id"],
            **{k: v for k, v in headers.items() if k != "webhook-id"},
        }

    def non_utf8_body():
        body = valid_body().encode().replace(b"Toft", b"T\xff\xfeft")
        webhook_id, timestamp = "msg_" + uuid.uuid4().hex, str(int(now().timestamp()))
        return body, {
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": raw_signature(secret, webhook_id, timestamp, body),
        }

    def three_megabytes():
        return signed(body=json.dumps({"eventType": "x", "padding": "x" * 3_000_000}))

    def signed_with_webhook_id_too_long():
        return signed(webhook_id="msg_" + "a" * 300)

    good_signature = signed()[1]["webhook-signature"].split(",", 1)[1]
    return [
        ("bad signature", lambda: with_signature("v1," + base64.b64encode(b"x" * 32).decode())),
        (
            "wrong secret",
            lambda: (lambda b: (b.encode(), signature_headers(b, new_secret())))(valid_body()),
        ),
        ("body altered by one byte", altered_by_one_byte),
        ("missing id", lambda: without("webhook-id")),
        ("missing timestamp", lambda: without("webhook-timestamp")),
        ("missing signature", lambda: without("webhook-signature")),
        ("headers of two messages mixed", mixed_messages),
        ("v1 without comma", lambda: with_signature("v1" + good_signature)),
        ("no comma at all", lambda: with_signature("garbage")),
        ("bad base64", lambda: with_signature("v1,!!!not*base64!!!")),
        ("three-part signature", lambda: with_signature("v1,abc,def")),
        ("only an unknown scheme", lambda: with_signature("v2," + good_signature)),
        ("empty signature", lambda: with_signature(" ")),
        ("non-UTF-8 body", non_utf8_body),
        # Just outside the 5-minute window. The header carries whole seconds, so "301 s ahead"
        # truncated and checked a moment later can be 300 s: 302 stays outside it.
        ("timestamp 302 s old", lambda: signed(at=now() - timedelta(seconds=302))),
        ("timestamp 302 s ahead", lambda: signed(at=now() + timedelta(seconds=302))),
        ("timestamp nan", lambda: with_timestamp("nan")),
        ("timestamp inf", lambda: with_timestamp("inf")),
        ("timestamp 1e20", lambda: with_timestamp("1e20")),
        ("timestamp not a number", lambda: with_timestamp("yesterday")),
        ("3 MB body", three_megabytes),
        ("valid message replayed after 6 minutes", lambda: signed(at=now() - timedelta(minutes=6))),
        ("signed, but webhook id too long", signed_with_webhook_id_too_long),
    ]


@pytest.mark.django_db
def test_a_thousand_hostile_requests_get_4xx_and_leave_no_row_and_no_task(
    client, webhook_secret, django_capture_on_commit_callbacks, monkeypatch
):
    drains_requested = []
    monkeypatch.setattr(
        "webhooks.services.request_event_drain", lambda **options: drains_requested.append(options)
    )
    kinds = hostile_requests(webhook_secret)
    statuses = {}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for name, make in itertools.islice(itertools.cycle(kinds), 1000):
            body, headers = make()
            response = client.post(
                ENDPOINT, body, content_type="application/json", **as_django_headers(headers)
            )
            statuses.setdefault(name, set()).add(response.status_code)

    assert len(statuses) == len(kinds)
    not_4xx = {
        name: codes for name, codes in statuses.items() if not all(400 <= c < 500 for c in codes)
    }
    assert not_4xx == {}
    assert statuses["3 MB body"] == {413}
    assert WebhookEvent.objects.count() == 0
    assert callbacks == [] and drains_requested == []


KNOWN_SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KNOWN_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KNOWN_TIMESTAMP = 1614265330
KNOWN_BODY = '{"test": 2432232314}'
KNOWN_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def clock_at_known_answer(monkeypatch):
    """Pin standardwebhooks' clock to the vector's timestamp."""
    import standardwebhooks.webhooks as library

    class PinnedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(KNOWN_TIMESTAMP, tz=tz)

    monkeypatch.setattr(library, "datetime", PinnedDatetime)


@pytest.mark.django_db
def test_the_known_answer_vector_verifies_with_the_clock_pinned(
    client, settings, clock_at_known_answer
):
    settings.CODAT_WEBHOOK_SECRETS = [new_secret(), KNOWN_SECRET]
    headers = {
        "webhook-id": KNOWN_ID,
        "webhook-timestamp": str(KNOWN_TIMESTAMP),
        "webhook-signature": KNOWN_SIGNATURE,
    }

    response = client.post(ENDPOINT, KNOWN_BODY, "application/json", **as_django_headers(headers))

    assert response.status_code == 202
    event = WebhookEvent.objects.get(webhook_id=KNOWN_ID)
    assert event.body == KNOWN_BODY
    # Signed by Codat's key but not an event: kept, and quarantined with the reason.
    assert (event.state, event.state_reason) == (EventState.QUARANTINED, "eventType is missing")


@pytest.mark.django_db
def test_the_known_answer_vector_is_stale_without_the_pinned_clock(client, settings):
    settings.CODAT_WEBHOOK_SECRETS = [KNOWN_SECRET]
    headers = {
        "webhook-id": KNOWN_ID,
        "webhook-timestamp": str(KNOWN_TIMESTAMP),
        "webhook-signature": KNOWN_SIGNATURE,
    }

    response = client.post(ENDPOINT, KNOWN_BODY, "application/json", **as_django_headers(headers))

    assert response.status_code == 400
    assert b"too old" in response.content


@pytest.mark.django_db
def test_a_secret_is_rotated_without_a_gap_and_the_old_one_is_refused_once_retired(
    client, settings
):
    old, new = new_secret(), new_secret()

    def deliver(signing_secrets):
        body = valid_body()
        headers = signature_headers(body, signing_secrets)
        return client.post(ENDPOINT, body, "application/json", **as_django_headers(headers))

    # Before the rotation: Codat signs with the old secret, the portal knows only that one.
    settings.CODAT_WEBHOOK_SECRETS = [old]
    assert deliver([old]).status_code == 202
    # During: Codat signs with both; the portal is told the new one too, in either order.
    assert deliver([old, new]).status_code == 202
    settings.CODAT_WEBHOOK_SECRETS = [old, new]
    assert deliver([old, new]).status_code == 202
    assert deliver([new, old]).status_code == 202
    assert deliver([new]).status_code == 202
    # After: the old secret is retired from the portal; a message signed only with it fails.
    settings.CODAT_WEBHOOK_SECRETS = [new]
    assert deliver([old]).status_code == 400
    assert deliver([new]).status_code == 202
    assert WebhookEvent.objects.count() == 6
