"""Processing after receipt: one drain message per burst of deliveries, and the drain itself."""

import uuid
from datetime import UTC, datetime

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.webhooks.conftest import post_signed
from webhooks import services
from webhooks.models import EventState, WebhookEvent
from webhooks.services import webhook_events_drain


def company_deleted() -> dict:
    return {
        "id": str(uuid.uuid4()),
        "eventType": "company.deleted",
        "generatedDate": datetime.now(tz=UTC).isoformat(),
        "payload": {"id": str(uuid.uuid4()), "name": "Toft stores"},
    }


class HandMovedClock:
    """The drain's clock, standing still until a test moves it."""

    def __init__(self):
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = HandMovedClock()
    monkeypatch.setattr(services, "drain_clock", clock)
    return clock


@pytest.fixture
def drain_messages(monkeypatch):
    """The drain messages the endpoint sends to the broker (the edge of this unit)."""
    sent = []
    monkeypatch.setattr(
        "webhooks.tasks.process_received_events_task.apply_async",
        lambda *args, **options: sent.append(options),
    )
    return sent


@pytest.mark.django_db
def test_a_burst_of_deliveries_sends_one_message_and_the_drain_applies_them_all(
    client, webhook_secret, django_capture_on_commit_callbacks, drain_messages, clock
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            response, _ = post_signed(client, company_deleted(), webhook_secret)
            assert response.status_code == 202

    # One message, due to start after the deliveries that relied on it were committed.
    assert drain_messages == [{"countdown": services.DRAIN_COUNTDOWN_SECONDS, "retry": False}]
    assert WebhookEvent.objects.filter(state=EventState.RECEIVED).count() == 5

    assert webhook_events_drain() == {"processed": 5, "failed": 0, "left": 0}
    assert not WebhookEvent.objects.filter(state=EventState.RECEIVED).exists()
    assert set(WebhookEvent.objects.values_list("times_processed", flat=True)) == {1}


@pytest.mark.django_db
def test_a_delivery_too_close_to_the_pending_drain_sends_the_next_message(
    client, webhook_secret, django_capture_on_commit_callbacks, drain_messages, clock
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, company_deleted(), webhook_secret)
    assert len(drain_messages) == 1

    # Later than the margin allows, that drain might start before this commit: a new message.
    clock.advance(services.DRAIN_COUNTDOWN_SECONDS - services.DRAIN_MARGIN_SECONDS + 0.05)
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, company_deleted(), webhook_secret)
    assert len(drain_messages) == 2


@pytest.mark.django_db
def test_a_drain_asked_for_while_one_is_on_its_way_is_sent_only_when_forced(drain_messages, clock):
    assert services.request_event_drain() is True
    assert services.request_event_drain() is False
    assert services.request_event_drain(force=True) is True
    # A forced drain starts at once.
    assert drain_messages[1] == {"retry": False}
    assert len(drain_messages) == 2


@pytest.mark.django_db
def test_a_message_that_cannot_be_sent_is_tried_again_by_the_next_delivery(
    monkeypatch, drain_messages
):
    def broker_down(*args, **options):
        raise RedisConnectionError("broker down")

    monkeypatch.setattr("webhooks.tasks.process_received_events_task.apply_async", broker_down)
    assert services.request_event_drain() is False

    monkeypatch.setattr(
        "webhooks.tasks.process_received_events_task.apply_async",
        lambda *args, **options: drain_messages.append(options),
    )
    assert services.request_event_drain() is True
    assert len(drain_messages) == 1


@pytest.mark.django_db
def test_an_event_whose_handler_meets_a_passing_failure_waits_and_the_others_go_on(
    client, webhook_secret, monkeypatch
):
    for _ in range(3):
        post_signed(client, company_deleted(), webhook_secret)
    unlucky = WebhookEvent.objects.order_by("pk")[1]
    real_handler_for = services.handler_for

    def handler_for(event_type):
        real = real_handler_for(event_type)

        def handler(envelope):
            if envelope.event_id == unlucky.event_id:
                raise RedisConnectionError("redis restarting")
            return real(envelope)

        return handler

    monkeypatch.setattr("webhooks.services.handler_for", handler_for)

    counts = webhook_events_drain()

    assert counts == {"processed": 2, "failed": 1, "left": 0}
    unlucky.refresh_from_db()
    assert unlucky.state == EventState.RECEIVED
    assert "redis restarting" in unlucky.last_error
    assert WebhookEvent.objects.exclude(pk=unlucky.pk).filter(state=EventState.APPLIED).count() == 2


@pytest.mark.django_db
def test_a_drain_out_of_time_says_how_many_events_are_left(client, webhook_secret, clock):
    for _ in range(4):
        post_signed(client, company_deleted(), webhook_secret)

    assert webhook_events_drain(seconds=0) == {"processed": 0, "failed": 0, "left": 4}
    assert WebhookEvent.objects.filter(state=EventState.RECEIVED).count() == 4
