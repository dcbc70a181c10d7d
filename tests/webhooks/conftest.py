"""Signing helpers for the webhook tests: deliveries signed as Svix signs them for Codat."""

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime

import pytest
import redis
from standardwebhooks import Webhook

from tests.oas import BANK_FEEDS, PLATFORM, load_document

ENDPOINT = "/webhooks/codat/"


@pytest.fixture(autouse=True)
def no_drain_on_its_way(monkeypatch):
    """Each test starts as if this process had sent no drain message yet."""
    from webhooks import services

    monkeypatch.setattr(services._DrainSchedule, "due_at", 0.0)


@pytest.fixture
def unconsumed_broker_url(redis_url):
    """A Redis database that no worker consumes (the session's is +0, the operations suite's +1,
    the burst test's +2), for gunicorn in tests about storing deliveries: their processing
    messages must not reach the session's worker, which would apply them while the test's tables
    are emptied."""
    from tests.plugins.redis_server import redis_url_with_db

    url = redis_url_with_db(redis_url, 3)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


def signature_headers(
    body: str | bytes,
    secret: str | list[str],
    *,
    webhook_id: str | None = None,
    at: datetime | None = None,
    prefix: str = "webhook",
) -> dict[str, str]:
    """The three headers Svix sends; several secrets give a space-separated signature list."""
    webhook_id = webhook_id or new_webhook_id()
    at = at or datetime.now(tz=UTC)
    text = body.decode() if isinstance(body, bytes) else body
    secrets_ = [secret] if isinstance(secret, str) else secret
    signature = " ".join(Webhook(s).sign(webhook_id, at, text) for s in secrets_)
    return {
        f"{prefix}-id": webhook_id,
        f"{prefix}-timestamp": str(int(at.timestamp())),
        f"{prefix}-signature": signature,
    }


def as_django_headers(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def post_signed(client, body, secret, **kwargs):
    body = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = signature_headers(body, secret, **kwargs)
    response = client.post(
        ENDPOINT, data=body, content_type="application/json", **as_django_headers(headers)
    )
    return response, headers


def oas_webhook_examples() -> list[tuple[str, str, str, dict]]:
    """(document, webhook key, example name, body) for every example of both documents."""
    examples = []
    for document in (PLATFORM, BANK_FEEDS):
        for key, operations in load_document(document).get("webhooks", {}).items():
            for operation in operations.values():
                content = operation["requestBody"]["content"]["application/json"]
                for name, example in (content.get("examples") or {}).items():
                    examples.append((document, key, name, example["value"]))
    return examples


@pytest.fixture
def webhook_secret(settings):
    secret = new_secret()
    settings.CODAT_WEBHOOK_SECRETS = [secret]
    return secret


def event_body(event_type: str, generated_at: datetime, payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "eventType": event_type,
        "generatedDate": generated_at.isoformat().replace("+00:00", "Z"),
        "payload": payload,
    }


def reference_company(company_id) -> dict:
    return {"id": str(company_id), "name": "Toft stores", "description": "", "tags": {}}


def connection_payload(company_id, connection_id, status: str, **extra) -> dict:
    return {
        "referenceCompany": reference_company(company_id),
        "connection": {
            "id": str(connection_id),
            "integrationKey": "gbol",
            "sourceId": "xero",
            "platformName": "Xero",
            "linkUrl": f"https://link-api.codat.io/companies/{company_id}/connections/x/start",
            "status": status,
            "created": "2026-01-01T00:00:00Z",
            "sourceType": "Accounting",
            **extra,
        },
    }


def read_payload(company_id, *entries) -> dict:
    return {
        "referenceCompany": reference_company(company_id),
        "modifiedFromDate": "2026-01-01T00:00:00Z",
        "dataTypes": [
            {
                "connectionId": str(uuid.uuid4()),
                "dataType": data_type,
                "recordsModified": modified,
                "status": status,
                "issues": [],
            }
            for data_type, modified, status in entries
        ],
    }


def deliver(client, secret, body: dict):
    """POST a signed event, then process it as the worker would; the stored event."""
    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_event_process

    response, headers = post_signed(client, body, secret)
    assert response.status_code in (200, 202), response.content
    event = WebhookEvent.objects.get(webhook_id=headers["webhook-id"])
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event
