"""The endpoint: verify first, store once per webhook id, answer at once, process after commit."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.webhooks.conftest import (
    ENDPOINT,
    as_django_headers,
    new_secret,
    post_signed,
    signature_headers,
)
from webhooks.models import EventState, WebhookEvent


def an_event(event_type="company.deleted", **payload) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "eventType": event_type,
        "generatedDate": datetime.now(tz=UTC).isoformat(),
        "payload": {"id": str(uuid.uuid4()), "name": "Toft stores", **payload},
    }


@pytest.mark.django_db
def test_a_verified_event_is_stored_and_processing_is_requested_after_commit(
    client, webhook_secret, django_capture_on_commit_callbacks, monkeypatch
):
    drains_requested = []
    monkeypatch.setattr(
        "webhooks.services.request_event_drain", lambda **options: drains_requested.append(options)
    )
    body = an_event()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response, headers = post_signed(client, body, webhook_secret)

    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert event.webhook_id == headers["webhook-id"]
    assert event.event_type == "company.deleted"
    assert event.company_codat_id == uuid.UUID(body["payload"]["id"])
    assert event.state == EventState.RECEIVED
    assert json.loads(event.body) == body
    assert event.headers["webhook-signature"] == headers["webhook-signature"]
    assert len(callbacks) == 1
    assert drains_requested == [{}]


@pytest.mark.django_db
def test_a_retry_of_the_same_message_gets_2xx_and_no_second_row(
    client, webhook_secret, django_capture_on_commit_callbacks
):
    body = json.dumps(an_event())
    headers = signature_headers(body, webhook_secret)
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post(ENDPOINT, body, "application/json", **as_django_headers(headers))
        second = client.post(ENDPOINT, body, "application/json", **as_django_headers(headers))

    assert (first.status_code, second.status_code) == (202, 200)
    assert WebhookEvent.objects.count() == 1
    assert len(callbacks) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", ["webhook", "svix", "Svix"])
def test_svix_and_unbranded_header_names_are_both_accepted(client, webhook_secret, prefix):
    response, headers = post_signed(client, an_event(), webhook_secret, prefix=prefix)

    assert response.status_code == 202
    assert WebhookEvent.objects.get().webhook_id == headers[f"{prefix}-id"]


@pytest.mark.django_db
def test_secrets_and_credentials_in_headers_are_never_stored(client, webhook_secret):
    body = json.dumps(an_event())
    headers = as_django_headers(signature_headers(body, webhook_secret))
    headers["HTTP_AUTHORIZATION"] = "Bearer custom-header-credential"
    headers["HTTP_COOKIE"] = "sessionid=abc"

    client.post(ENDPOINT, body, "application/json", **headers)

    stored = WebhookEvent.objects.get().headers
    assert "authorization" not in {name.lower() for name in stored}
    assert "custom-header-credential" not in json.dumps(stored)
    assert webhook_secret not in json.dumps(stored)


@pytest.mark.django_db
def test_the_ledger_keeps_the_delivery_headers_by_their_lower_case_names(client, webhook_secret):
    body = json.dumps(an_event())
    signed = signature_headers(body, webhook_secret, prefix="svix")
    headers = as_django_headers(signed)
    headers["HTTP_USER_AGENT"] = "Svix-Webhooks/1.62"
    headers["HTTP_X_CODAT_CLIENTID"] = "a0b1c2d3-client"
    headers["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"

    client.post(ENDPOINT, body, "application/json", **headers)

    assert WebhookEvent.objects.get().headers == {
        **signed,
        "content-type": "application/json",
        "user-agent": "Svix-Webhooks/1.62",
        "x-codat-clientid": "a0b1c2d3-client",
    }


@pytest.mark.django_db
def test_a_signed_body_that_is_not_an_event_is_quarantined_with_the_reason_and_not_processed(
    client, webhook_secret, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response, _ = post_signed(client, "[1, 2, 3]", webhook_secret)

    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert (event.state, event.state_reason) == (
        EventState.QUARANTINED,
        "body is not a JSON object",
    )
    assert callbacks == []


@pytest.mark.django_db
def test_an_oversize_body_gets_413_before_any_verification(client, webhook_secret):
    body = json.dumps(an_event(description="x" * (1024 * 1024)))
    response, _ = post_signed(client, body, webhook_secret)

    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_without_configured_secrets_nothing_is_accepted_and_codat_retries(client, settings):
    settings.CODAT_WEBHOOK_SECRETS = []
    response, _ = post_signed(client, an_event(), new_secret())

    assert response.status_code == 503
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_only_post_is_allowed(client):
    assert client.get(ENDPOINT).status_code == 405


@pytest.mark.django_db
def test_an_unusable_secret_is_skipped_and_the_others_still_verify(client, settings):
    secret = new_secret()
    settings.CODAT_WEBHOOK_SECRETS = ["whsec_%%%", "", secret]

    response, _ = post_signed(client, an_event(), secret)

    assert response.status_code == 202


@pytest.mark.django_db
def test_with_only_unusable_secrets_the_answer_is_503_not_500(client, settings):
    settings.CODAT_WEBHOOK_SECRETS = ["whsec_%%%"]

    response, _ = post_signed(client, an_event(), new_secret())

    assert response.status_code == 503
    assert not WebhookEvent.objects.exists()
