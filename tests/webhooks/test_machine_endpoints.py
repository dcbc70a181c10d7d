"""Codat's deliveries stop after the security middleware; pages go through the whole chain.

Through Django's test client, whose handler builds the chain from settings.MIDDLEWARE as
gunicorn's does (portal/machine_endpoints.py).
"""

import json

import pytest
from django.test import Client

from tests.webhooks.conftest import ENDPOINT, as_django_headers, signature_headers
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def signed_post(client, secret, **extra):
    body = json.dumps(
        {
            "id": "6e0bb2fb-1c43-4d4b-b5b5-6c1d0c1e5a10",
            "eventType": "company.deleted",
            "generatedDate": "2026-11-28T09:00:00Z",
            "payload": {"id": "0498e921-9b53-4396-a412-4f2f5983b0a2", "name": "Toft stores"},
        }
    )
    headers = as_django_headers(signature_headers(body, secret))
    return client.post(ENDPOINT, body, "application/json", **headers, **extra)


def test_a_delivery_is_stored_without_the_browser_middleware_and_pages_keep_it(webhook_secret):
    # A client that checks CSRF tokens as a browser's requests are checked.
    client = Client(enforce_csrf_checks=True)

    response = signed_post(client, webhook_secret)

    assert response.status_code == 202
    assert WebhookEvent.objects.count() == 1
    # XFrameOptionsMiddleware marks every response it sees; the session middleware varies
    # responses on the cookie it reads
    assert "X-Frame-Options" not in response.headers
    assert "cookie" not in response.headers.get("Vary", "").lower()
    assert not response.cookies
    page = client.get("/")
    assert page.status_code == 302
    assert page.headers["X-Frame-Options"] == "DENY"


def test_a_delivery_for_a_host_not_allowed_gets_400_and_is_not_stored(client, webhook_secret):
    response = signed_post(client, webhook_secret, HTTP_HOST="portal.evil.example")

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_the_security_middleware_still_applies(client, webhook_secret, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600

    response = signed_post(client, webhook_secret)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")

    response = signed_post(client, webhook_secret, secure=True)
    assert response.status_code == 202
    assert response.headers["Strict-Transport-Security"] == "max-age=3600"
