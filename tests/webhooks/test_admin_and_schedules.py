"""The ledger and the consumers in the admin, per role; the periodic tasks."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse

from operations.models import Operation, OperationKind
from tests.factories import StaffFactory
from tests.webhooks.conftest import (
    as_django_headers,
    connection_payload,
    event_body,
    signature_headers,
)
from webhooks.models import ConsumerStatus, EventState, WebhookConsumer, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_event(client, webhook_secret):
    body = json.dumps(
        event_body(
            "connection.connected",
            datetime(2026, 3, 1, tzinfo=UTC),
            connection_payload(uuid.uuid4(), uuid.uuid4(), "Linked"),
        )
    )
    headers = as_django_headers(signature_headers(body, webhook_secret))
    headers["HTTP_AUTHORIZATION"] = "Bearer do-not-keep-me"
    client.post("/webhooks/codat/", body, "application/json", **headers)
    return WebhookEvent.objects.get()


def test_the_ledger_lists_filters_and_shows_body_and_headers_but_no_credentials(
    client, stored_event
):
    client.force_login(StaffFactory(role="viewer"))
    changelist = reverse("admin:webhooks_webhookevent_changelist")

    for query in ("", "?state__exact=received", "?event_type=connection.connected", "?q=Toft"):
        assert client.get(changelist + query).status_code == 200
    page = client.get(reverse("admin:webhooks_webhookevent_change", args=[stored_event.pk]))

    content = page.content.decode()
    assert "connection.connected" in content and "webhook-signature" in content
    assert "do-not-keep-me" not in content


def test_operators_replay_events_and_viewers_cannot(client, stored_event):
    changelist = reverse("admin:webhooks_webhookevent_changelist")
    action = {"action": "replay", "_selected_action": [stored_event.pk]}

    client.force_login(StaffFactory(role="viewer"))
    client.post(changelist, action)
    stored_event.refresh_from_db()
    assert stored_event.times_processed == 0

    client.force_login(StaffFactory(role="operator"))
    response = client.post(changelist, action, follow=True)
    stored_event.refresh_from_db()
    assert (stored_event.state, stored_event.times_processed) == (EventState.APPLIED, 1)
    assert "Replayed: 1 applied." in response.content.decode()


def test_an_admin_registers_a_consumer_and_is_told_where_the_secret_goes(
    client, django_capture_on_commit_callbacks
):
    client.force_login(StaffFactory(role="admin"))
    add = reverse("admin:webhooks_webhookconsumer_add")
    assert "/webhooks/codat/" in client.get(add).content.decode()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            add,
            {
                "url": "https://portal.example/webhooks/codat/",
                "event_types": ["read.completed", "connection.connected"],
                "company_tags": "region:uk",
            },
            follow=True,
        )

    consumer = WebhookConsumer.objects.get()
    assert (consumer.status, consumer.company_tags) == (
        ConsumerStatus.PENDING_CREATE,
        ["region:uk"],
    )
    assert consumer.event_types == ["connection.connected", "read.completed"]
    assert "CODAT_WEBHOOK_SECRETS" in response.content.decode()
    assert len(callbacks) == 1
    # The admin's history entry for the add points at the consumer the service made.
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id) == (ADDITION, str(consumer.pk))
    assert entry.get_edited_object() == consumer
    operation = Operation.objects.get(consumer=consumer)
    assert operation.requested_by.username == entry.user.username


def test_a_consumer_form_with_bad_input_says_which_field_and_changes_nothing(client):
    client.force_login(StaffFactory(role="admin"))
    response = client.post(
        reverse("admin:webhooks_webhookconsumer_add"),
        {"url": "not a url", "event_types": ["read.completed"], "company_tags": "nocolon"},
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"url", "company_tags"}
    assert "key:value" in form.errors["company_tags"][0]
    assert not WebhookConsumer.objects.exists()
    assert not Operation.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_cannot_register_consumers(client, role):
    client.force_login(StaffFactory(role=role))
    assert client.get(reverse("admin:webhooks_webhookconsumer_add")).status_code == 403


def test_migrate_leaves_the_webhook_jobs_in_the_beat_schedule():
    from django_celery_beat.models import PeriodicTask

    from portal.celery import app
    from portal.schedules import ensure_periodic_tasks
    from webhooks import tasks  # noqa: F401  (registers the webhooks tasks with the app)

    ensure_periodic_tasks()  # idempotent: migrate already ran it once
    scheduled = set(PeriodicTask.objects.values_list("task", flat=True))
    webhook_jobs = {
        "webhooks.tasks.requeue_unprocessed_events",
        "webhooks.tasks.reconcile_missed_events",
        "webhooks.tasks.import_webhook_consumers",
    }
    assert webhook_jobs <= scheduled
    assert webhook_jobs <= set(app.tasks)


def test_an_admin_asks_for_the_list_of_consumers_at_codat(client):
    client.force_login(StaffFactory(role="admin"))
    changelist = reverse("admin:webhooks_webhookconsumer_changelist")
    assert "List consumers at Codat" in client.get(changelist).content.decode()

    response = client.post(reverse("admin:webhooks_webhookconsumer_import"))

    assert response.status_code == 302
    assert Operation.objects.get().kind == OperationKind.LIST_CONSUMERS


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_do_not_get_the_consumer_list_import(client, role):
    client.force_login(StaffFactory(role=role))
    changelist = reverse("admin:webhooks_webhookconsumer_changelist")

    assert "List consumers at Codat" not in client.get(changelist).content.decode()
    assert client.post(reverse("admin:webhooks_webhookconsumer_import")).status_code == 403
