"""Webhook consumers: the desired state and an operation row first, then the Codat call from the
operation worker (the same limiter, backoff, sweeper and job page as every Codat call)."""

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from codat.client import CodatClient
from codat.errors import CodatBadRequest, CodatNotFound, CodatServerError
from operations import limiter
from operations.models import Operation, OperationKind, OperationState
from operations.sweeper import operations_sweep
from operations.worker import operation_run
from tests.waiting import wait_until
from webhooks.consumers import (
    event_type_choices,
    webhook_consumer_delete,
    webhook_consumer_disable,
    webhook_consumer_register,
    webhook_consumers_import,
    webhook_consumers_list_request,
)
from webhooks.models import ConsumerStatus, EventState, WebhookConsumer, WebhookEvent

URL = "https://portal.example/webhooks/codat/"


@pytest.fixture
def codat(monkeypatch, operations_redis_url, settings):
    """The operation worker's Codat client, replaced at its edge; a limiter with a clean slate."""
    settings.REDIS_URL = operations_redis_url
    settings.CODAT_OPERATIONS_MAX_ATTEMPTS = 3
    limiter.redis_client().flushdb()
    monkeypatch.setattr("operations.queue.enqueue", lambda ids, countdown=None: len(ids))
    client = mock.create_autospec(CodatClient, instance=True)
    client.last_rate_limit = None
    client.list_webhook_consumers.return_value = {"results": []}
    client.create_webhook_consumer.side_effect = lambda url, event_types, **kw: {
        "id": str(uuid.uuid4()),
        "url": url,
        "eventTypes": list(event_types),
        "disabled": kw.get("disabled") or False,
    }
    monkeypatch.setattr("operations.worker.codat_client", lambda: client)
    return client


@pytest.fixture
def worker_at_the_sandbox(sandbox, settings, operations_redis_url, monkeypatch):
    """The operation worker's calls go over HTTP to the sandbox."""
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    settings.REDIS_URL = operations_redis_url
    limiter.redis_client().flushdb()
    monkeypatch.setattr("operations.queue.enqueue", lambda ids, countdown=None: len(ids))
    return sandbox


def run_due(kind: str | None = None) -> list[str]:
    """Run every pending consumer row once, as the worker would (backoff skipped); the outcomes."""
    kinds = [kind] if kind else [OperationKind.REGISTER_CONSUMER, OperationKind.DELETE_CONSUMER]
    pending = Operation.objects.filter(state=OperationState.PENDING, kind__in=kinds)
    ids = list(pending.order_by("pk").values_list("pk", flat=True))
    Operation.objects.filter(pk__in=ids).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    return [operation_run(operation_id=pk) for pk in ids]


@pytest.mark.django_db
def test_registering_writes_the_row_and_its_operation_and_enqueues_after_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])

    assert consumer.status == ConsumerStatus.PENDING_CREATE
    operation = Operation.objects.get(consumer=consumer)
    assert (operation.kind, operation.state) == (OperationKind.REGISTER_CONSUMER, "pending")
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_the_worker_creates_the_consumer_at_codat_once(codat):
    consumer = webhook_consumer_register(
        url=URL, event_types=["read.completed", "lending.read.completed"], company_tags=["a:b"]
    )

    assert run_due() == ["succeeded"]
    assert run_due() == []

    codat.create_webhook_consumer.assert_called_once_with(
        URL, ["lending.read.completed", "read.completed"], disabled=False, company_tags=["a:b"]
    )
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.ACTIVE
    assert consumer.codat_id is not None
    assert Operation.objects.get(consumer=consumer).result == {"consumerId": str(consumer.codat_id)}


@pytest.mark.django_db
def test_a_consumer_codat_already_has_from_a_lost_attempt_is_adopted_not_created_twice(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    remote_id = uuid.uuid4()
    codat.list_webhook_consumers.return_value = {
        "results": [{"id": str(remote_id), "url": URL, "eventTypes": ["read.completed"]}]
    }
    # An earlier attempt's worker died after Codat created the consumer.
    Operation.objects.filter(consumer=consumer).update(attempts=1)

    assert run_due() == ["succeeded"]

    codat.create_webhook_consumer.assert_not_called()
    assert WebhookConsumer.objects.get().codat_id == remote_id


@pytest.mark.django_db
def test_transient_errors_back_off_and_a_call_that_fails_for_good_shows_failed_with_codats_reason(
    codat,
):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    codat.create_webhook_consumer.side_effect = CodatServerError("Codat is down", http_status=503)

    assert run_due() == ["retrying"]
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.PENDING_CREATE
    operation = Operation.objects.get(consumer=consumer)
    assert (operation.state, operation.transient_failures) == ("pending", 1)
    assert operation.next_attempt_at > operation.created_at

    # Past the retry budget, the row fails and the consumer with it: it never stays
    # "being registered" for ever.
    assert run_due() == ["retrying"]
    assert run_due() == ["failed"]
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.FAILED
    assert "Codat is down" in consumer.last_error

    other = webhook_consumer_register(url=URL + "x", event_types=["read.completed"])
    codat.create_webhook_consumer.side_effect = CodatBadRequest("url: not a URI", http_status=400)
    assert run_due() == ["failed"]
    other.refresh_from_db()
    assert other.status == ConsumerStatus.FAILED
    assert "not a URI" in other.last_error


@pytest.mark.django_db
def test_delete_and_disable_go_through_codat_and_a_consumer_already_gone_counts_as_deleted(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    run_due()
    consumer.refresh_from_db()

    copy = webhook_consumer_disable(consumer=consumer)
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.PENDING_DELETE
    assert (copy.disabled, copy.status) == (True, ConsumerStatus.PENDING_CREATE)

    codat.delete_webhook_consumer.side_effect = CodatNotFound("gone", http_status=404)
    assert sorted(run_due()) == ["succeeded", "succeeded"]
    codat.delete_webhook_consumer.assert_called_once_with(str(consumer.codat_id))
    consumer.refresh_from_db()
    copy.refresh_from_db()
    assert (consumer.status, copy.status) == (ConsumerStatus.DELETED, ConsumerStatus.ACTIVE)
    assert webhook_consumer_delete(consumer=copy).status == ConsumerStatus.PENDING_DELETE


@pytest.mark.django_db
def test_deleting_a_consumer_whose_registration_has_not_started_calls_codat_not_at_all(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])

    assert webhook_consumer_delete(consumer=consumer).status == ConsumerStatus.DELETED

    assert Operation.objects.get(consumer=consumer).state == OperationState.CANCELLED
    assert run_due() == []
    codat.create_webhook_consumer.assert_not_called()


@pytest.mark.django_db
def test_a_deletion_asked_while_the_registration_runs_waits_for_it_then_deletes(codat):
    consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    register = Operation.objects.get(consumer=consumer)
    Operation.objects.filter(pk=register.pk).update(state=OperationState.RUNNING)

    assert webhook_consumer_delete(consumer=consumer).status == ConsumerStatus.PENDING_DELETE
    assert run_due(OperationKind.DELETE_CONSUMER) == ["waiting"]

    # The registration finishes (its row goes back to pending and runs).
    Operation.objects.filter(pk=register.pk).update(state=OperationState.PENDING)
    assert run_due(OperationKind.REGISTER_CONSUMER) == ["succeeded"]
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.PENDING_DELETE  # the later wish stands
    assert run_due(OperationKind.DELETE_CONSUMER) == ["succeeded"]
    codat.delete_webhook_consumer.assert_called_once_with(str(consumer.codat_id))
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.DELETED


@pytest.mark.django_db
def test_a_consumer_row_lost_from_redis_is_sent_again_by_the_sweeper(codat, monkeypatch):
    sent = []
    monkeypatch.setattr("operations.queue.enqueue", lambda ids, countdown=None: sent.extend(ids))
    monkeypatch.setattr("operations.sweeper._broker_queue_is_empty", lambda: True)
    with transaction.atomic():
        consumer = webhook_consumer_register(url=URL, event_types=["read.completed"])
    sent.clear()  # the message sent on commit is lost

    operations_sweep()

    assert sent == [Operation.objects.get(consumer=consumer).pk]


@pytest.mark.django_db
def test_consumers_made_elsewhere_are_listed_from_codat(codat):
    codat.list_webhook_consumers.return_value = {
        "results": [{"id": str(uuid.uuid4()), "url": URL, "eventTypes": ["company.created"]}]
    }

    listing = webhook_consumers_list_request()
    assert webhook_consumers_list_request() == listing  # one live listing at a time
    assert run_due(OperationKind.LIST_CONSUMERS) == ["succeeded"]
    assert Operation.objects.get(pk=listing.pk).result == {"changed": 1}
    webhook_consumers_list_request()
    assert run_due(OperationKind.LIST_CONSUMERS) == ["succeeded"]
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
    worker_at_the_sandbox, live_server, settings, monkeypatch
):
    from companies.models import Company

    sandbox = worker_at_the_sandbox
    from webhooks.services import webhook_event_process

    # given: the portal's endpoint registered at (sandbox) Codat for company.created
    monkeypatch.setattr("webhooks.services.request_event_drain", lambda **options: False)
    consumer = webhook_consumer_register(
        url=live_server.url + "/webhooks/codat/", event_types=["company.created"]
    )
    assert run_due() == ["succeeded"]
    consumer.refresh_from_db()
    assert consumer.status == ConsumerStatus.ACTIVE
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
    assert webhook_consumers_import(remotes=codat.list_webhook_consumers()["results"]) == 1
    registered.refresh_from_db()
    assert registered.disabled is True
    assert "5 days" in registered.last_error
    being_deleted.refresh_from_db()
    assert being_deleted.disabled is False  # its own change is on its way
    assert webhook_consumers_import(remotes=codat.list_webhook_consumers()["results"]) == 0

    # re-enabled in Codat's Portal
    listed["disabled"] = False
    assert webhook_consumers_import(remotes=codat.list_webhook_consumers()["results"]) == 1
    registered.refresh_from_db()
    assert (registered.disabled, registered.last_error) == (False, "")


@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_an_endpoint_the_sandbox_disabled_after_five_days_of_failures_shows_disabled(
    worker_at_the_sandbox, live_server
):
    # given: a consumer registered at (sandbox) Codat whose URL answers 404 to every delivery
    sandbox = worker_at_the_sandbox
    consumer = webhook_consumer_register(
        url=live_server.url + "/no-such-endpoint/", event_types=["company.created"]
    )
    assert run_due() == ["succeeded"]
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
    listing = webhook_consumers_list_request()
    assert run_due(OperationKind.LIST_CONSUMERS) == ["succeeded"]
    assert Operation.objects.get(pk=listing.pk).result == {"changed": 1}
    consumer.refresh_from_db()
    assert consumer.disabled is True
    assert consumer.last_error.startswith("Disabled at Codat")
