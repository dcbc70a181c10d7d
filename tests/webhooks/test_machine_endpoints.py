"""Codat's deliveries go through a handler with only the security middleware; pages keep all."""

import json

import pytest
from django.test import RequestFactory

from portal.machine_endpoints import machine_endpoints_handler, with_machine_endpoints
from tests.webhooks.conftest import ENDPOINT, as_django_headers, signature_headers
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def connections_kept_across_requests():
    """As Django's test client does: a handler called here must not close the connection that
    holds the test's transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(application, request) -> tuple[int, dict]:
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"] = int(status.split()[0])
        answered["headers"] = {name.lower(): value for name, value in headers}

    body = application(request.environ, start_response)
    b"".join(body)
    body.close()
    return answered["status"], answered["headers"]


def signed_post(secret, **extra):
    body = json.dumps(
        {
            "id": "6e0bb2fb-1c43-4d4b-b5b5-6c1d0c1e5a10",
            "eventType": "company.deleted",
            "generatedDate": "2026-11-28T09:00:00Z",
            "payload": {"id": "0498e921-9b53-4396-a412-4f2f5983b0a2", "name": "Toft stores"},
        }
    )
    headers = as_django_headers(signature_headers(body, secret))
    return RequestFactory().post(ENDPOINT, body, "application/json", **headers, **extra)


def test_a_delivery_is_stored_without_the_browser_middleware_and_pages_keep_it(webhook_secret):
    from portal.wsgi import application

    status, headers = call(application, signed_post(webhook_secret))

    assert status == 202
    assert WebhookEvent.objects.count() == 1
    # XFrameOptionsMiddleware marks every response it sees; the session middleware varies
    # responses on the cookie it reads
    assert "x-frame-options" not in headers
    assert "cookie" not in headers.get("vary", "").lower()
    status, headers = call(application, RequestFactory().get("/"))
    assert status == 302
    assert headers["x-frame-options"] == "DENY"


def test_a_delivery_for_a_host_not_allowed_gets_400_and_is_not_stored(webhook_secret):
    from portal.wsgi import application

    status, _ = call(application, signed_post(webhook_secret, HTTP_HOST="portal.evil.example"))

    assert status == 400
    assert WebhookEvent.objects.count() == 0


def test_the_security_middleware_still_applies(webhook_secret, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    application = with_machine_endpoints(machine_endpoints_handler())

    status, headers = call(application, signed_post(webhook_secret))
    assert status == 301
    assert headers["location"].startswith("https://")

    status, headers = call(application, signed_post(webhook_secret, secure=True))
    assert status == 202
    assert headers["strict-transport-security"] == "max-age=3600"
