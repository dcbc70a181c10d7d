"""Deeply nested signed JSON (issue 17, hole 2): the endpoint quarantines it with the reason
instead of answering 500, and the ledger page of an event nested deep still renders."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import StaffFactory
from tests.webhooks.conftest import post_signed
from webhooks.envelope import MAX_NESTING
from webhooks.models import EventState, WebhookEvent

pytestmark = pytest.mark.django_db


def nested_event(levels: int) -> str:
    """An event whose payload holds a list `levels` deep."""
    envelope = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "eventType": "company.deleted",
            "generatedDate": datetime.now(tz=UTC).isoformat(),
            "payload": {"id": str(uuid.uuid4()), "deep": "HOLE"},
        }
    )
    return envelope.replace('"HOLE"', "[" * levels + "]" * levels)


def test_a_signed_body_nested_a_thousand_deep_is_quarantined_with_the_reason(
    client, webhook_secret
):
    response, headers = post_signed(client, nested_event(1000), webhook_secret)

    assert response.status_code == 202
    event = WebhookEvent.objects.get(webhook_id=headers["webhook-id"])
    assert event.state == EventState.QUARANTINED
    assert event.state_reason == f"body nests deeper than {MAX_NESTING} levels"


def test_brackets_inside_strings_do_not_count_as_nesting(client, webhook_secret):
    body = (
        nested_event(1)
        .replace('"company.deleted"', '"company.deleted"')
        .replace('"generatedDate"', '"note": "' + "[{" * 500 + '", "generatedDate"')
    )
    response, headers = post_signed(client, body, webhook_secret)

    assert response.status_code == 202
    event = WebhookEvent.objects.get(webhook_id=headers["webhook-id"])
    assert event.state != EventState.QUARANTINED, event.state_reason


def test_the_ledger_page_of_an_event_nested_900_deep_renders(client):
    # An event stored as it came (as before the endpoint refused such bodies).
    body = nested_event(900)
    event = WebhookEvent.objects.create(
        webhook_id="msg_" + uuid.uuid4().hex,
        body=body,
        headers={},
        state=EventState.QUARANTINED,
        state_reason="stored before the depth limit",
        received_at=timezone.now(),
    )
    client.force_login(StaffFactory(role="viewer"))

    page = client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk]))

    assert page.status_code == 200
    assert "[" * 900 in page.content.decode()
