"""Webhook consumers: a durable row first, then the Codat call from a worker."""

import uuid
from unittest import mock

import pytest

from codat.client import CodatClient
from codat.errors import CodatBadRequest, CodatNotFound, CodatServerError
from tests.waiting import wait_until
from webhooks.consumers import (
    event_type_choices,
    webhook_consumer_delete,
    webhook_consumer_disable,
    webhook_consumer_register,
    webhook_consumer_sync,
    webhook_consumers_import,
    webhook_consumers_redrive,
)
from webhooks.models import ConsumerStatus, EventState, WebhookConsumer, WebhookEvent

URL = "https://portal.example/webhooks/codat/"


@pytest.fixture
def codat():
    client = mock.create_autospec(CodatClient, instance=True)
    client.list_webhook_consumers.return_value = {"results": []}
    client.create_webhook_consumer.side_effect = lambda url, event_types, **kw: {
        "id": str(uuid.uuid4()),
        "url": url,
        "eventTypes": list(event_types),
        "disabled": kw.get("disabled") or False,
    }
    return client


@pytest.mark.django_db
def test_registering_writes_the_row_and_enqueues_the_call_after_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])

    assert consumer.status == ConsumerStatus.PENDING_CREATE
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_a_worker_creates_the_consumer_at_codat_once(codat):
    consumer = webhook_consumer_register(
        url=URL, event_types=["read.completed", "lending.read.completed"], company_tags=["a:b"]
    )

    assert webhook_consumer_sync(consumer_pk=consumer.pk, client=codat) == ConsumerStatus.ACTIVE
    assert webhook_consumer_sync(consumer_pk=consumer.pk, client=codat) == ConsumerStatus.ACTIVE

    codat.create_webhook_consumer.assert_called_once_with(
        URL, ["lending.read.completed", "read.completed"], disabled=False, company_tags=["a:b"]
    )
    assert WebhookConsumer.objects.get().codat_id is not None


@pytest.mark.django_db
def test_a_consumer_codat_already_has_from_a_lost_attempt_is_adopted_not_created_twice(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    remote_id = uuid.uuid4()
    codat.list_webhook_consumers.return_value = {
        "results": [{"id": str(remote_id), "url": URL, "eventTypes": ["read.completed"]}]
    }

    webhook_consumer_sync(consumer_pk=consumer.pk, client=codat)

    codat.create_webhook_consumer.assert_not_called()
    assert WebhookConsumer.objects.get().codat_id == remote_id


@pytest.mark.django_db
def test_a_transient_error_leaves_the_row_pending_and_a_permanent_one_fails_it(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    codat.create_webhook_consumer.side_effect = CodatServerError("Codat is down", http_status=503)

    with pytest.raises(CodatServerError):
        webhook_consumer_sync(consumer_pk=consumer.pk, client=codat)
    consumer.refresh_from_db()
    assert (consumer.status, consumer.attempts) == (ConsumerStatus.PENDING_CREATE, 1)

    codat.create_webhook_consumer.side_effect = CodatBadRequest("url: not a URI", http_status=400)
    assert webhook_consumer_sync(consumer_pk=consumer.pk, client=codat) == ConsumerStatus.FAILED
    consumer.refresh_from_db()
    assert "not a URI" in consumer.last_error


@pytest.mark.django_db
def test_delete_and_disable_go_through_codat_and_a_consumer_already_gone_counts_as_deleted(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    webhook_consumer_sync(consumer_pk=consumer.pk, client=codat)
    consumer.refresh_from_db()

    copy = webhook_consumer_disable(consumer=consumer)
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.PENDING_DELETE
    assert (copy.disabled, copy.status) == (True, ConsumerStatus.PENDING_CREATE)

    codat.delete_webhook_consumer.side_effect = CodatNotFound("gone", http_status=404)
    assert webhook_consumer_sync(consumer_pk=consumer.pk, client=codat) == ConsumerStatus.DELETED
    codat.delete_webhook_consumer.assert_called_once_with(str(consumer.codat_id))
    assert webhook_consumer_sync(consumer_pk=copy.pk, client=codat) == ConsumerStatus.ACTIVE
    assert webhook_consumer_delete(consumer=copy).status == ConsumerStatus.PENDING_DELETE


@pytest.mark.django_db
def test_rows_left_pending_are_driven_again(monkeypatch):
    from django.utils import timezone

    sent = []
    monkeypatch.setattr("webhooks.consumers._send", lambda task, pk: sent.append(pk))
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])

    assert webhook_consumers_redrive() == 0
    later = timezone.now() + timezone.timedelta(minutes=3)
    assert webhook_consumers_redrive(now=later) == 1
    assert sent[-1] == consumer.pk


@pytest.mark.django_db
def test_consumers_made_elsewhere_are_listed_from_codat(codat):
    codat.list_webhook_consumers.return_value = {
        "results": [{"id": str(uuid.uuid4()), "url": URL, "eventTypes": ["company.created"]}]
    }

    assert webhook_consumers_import(client=codat) == 1
    assert webhook_consumers_import(client=codat) == 0
    assert WebhookConsumer.objects.get().status == ConsumerStatus.ACTIVE


@pytest.mark.django_db
def test_the_event_types_offered_include_each_custom_product_read_completed():
    from tests.factories import ProductFactory

    ProductFactory(identifier="lending-plus", kind="custom")
    ProductFactory(identifier="standard-one", kind="standard")

    offered = {value for value, _ in event_type_choices()}

    assert {"read.completed", "lending-plus.read.completed"} <= offered
    assert "standard-one.read.completed" not in offered


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_registered_at_the_sandbox_the_endpoint_receives_signed_events_and_applies_them(
    sandbox, live_server, settings, monkeypatch
):
    from companies.models import Company
    from webhooks.services import webhook_event_process

    # given: the portal's endpoint registered at (sandbox) Codat for company.created
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    monkeypatch.setattr("webhooks.services.request_event_drain", lambda **options: False)
    consumer = webhook_consumer_register(
        url=live_server.url + "/webhooks/codat/", event_types=["company.created"]
    )
    assert webhook_consumer_sync(consumer_pk=consumer.pk) == ConsumerStatus.ACTIVE
    consumer.refresh_from_db()
    # Codat's API never returns the secret; the operator copies it, here from the control API.
    settings.CODAT_WEBHOOK_SECRETS = [sandbox.secret(str(consumer.codat_id))]

    # when
    company = CodatClient(sandbox.base_url, sandbox.api_key).create_company("Toft stores")

    # then
    wait_until(
        WebhookEvent.objects.filter(event_type="company.created").exists,
        timeout=10,
        message="no company.created delivery",
    )
    event = WebhookEvent.objects.get(event_type="company.created")
    assert webhook_event_process(event_pk=event.pk) == EventState.APPLIED
    assert Company.objects.get(codat_id=company["id"]).name == "Toft stores"


@pytest.mark.django_db
def test_listing_takes_codats_disabled_flag_for_registered_consumers(codat):
    registered = WebhookConsumer.objects.create(
        url=URL,
        event_types=["read.completed"],
        codat_id=uuid.uuid4(),
        status=ConsumerStatus.ACTIVE,
    )
    being_deleted = WebhookConsumer.objects.create(
        url=URL,
        event_types=["company.created"],
        codat_id=uuid.uuid4(),
        status=ConsumerStatus.PENDING_DELETE,
    )
    listed = {
        "url": URL,
        "eventTypes": ["read.completed"],
        "id": str(registered.codat_id),
        "disabled": True,
    }
    codat.list_webhook_consumers.return_value = {
        "results": [listed, {**listed, "id": str(being_deleted.codat_id)}]
    }

    # Codat disabled the endpoint after five days of failed deliveries
    assert webhook_consumers_import(client=codat) == 1
    registered.refresh_from_db()
    assert registered.disabled is True
    assert "5 days" in registered.last_error
    being_deleted.refresh_from_db()
    assert being_deleted.disabled is False  # its own change is on its way
    assert webhook_consumers_import(client=codat) == 0

    # re-enabled in Codat's Portal
    listed["disabled"] = False
    assert webhook_consumers_import(client=codat) == 1
    registered.refresh_from_db()
    assert (registered.disabled, registered.last_error) == (False, "")


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_an_endpoint_the_sandbox_disabled_after_five_days_of_failures_shows_disabled(
    sandbox, live_server, settings
):
    # given: a consumer registered at (sandbox) Codat whose URL answers 404 to every delivery
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    consumer = webhook_consumer_register(
        url=live_server.url + "/no-such-endpoint/", event_types=["company.created"]
    )
    assert webhook_consumer_sync(consumer_pk=consumer.pk) == ConsumerStatus.ACTIVE
    codat = CodatClient(sandbox.base_url, sandbox.api_key)

    def attempts() -> int:
        messages = sandbox.control("GET", "webhooks/messages").json()
        return sum(len(message["attempts"]) for message in messages)

    # when: its deliveries fail for five days
    codat.create_company("Failing Ltd")
    sandbox.wait_until(lambda: attempts() == 1)
    sandbox.advance(5 * 24 * 3600)
    codat.create_company("Still failing Ltd")
    sandbox.wait_until(lambda: attempts() >= 2)
    consumer.refresh_from_db()
    sandbox.wait_until(
        lambda: (
            [
                listed["disabled"]
                for listed in codat.list_webhook_consumers()["results"]
                if listed["id"] == str(consumer.codat_id)
            ]
            == [True]
        )
    )

    # then: the hourly listing marks it disabled, with what to do about it
    assert webhook_consumers_import() == 1
    consumer.refresh_from_db()
    assert consumer.disabled is True
    assert consumer.last_error.startswith("Disabled at Codat")
