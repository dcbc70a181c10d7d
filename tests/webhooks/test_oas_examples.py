"""Every example body of the `webhooks` sections of Codat's two documents, signed, is accepted
and applied to the mirror as the event says."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from companies.models import Company, Connection, DataTypeStatus
from products.models import CompanyProduct
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory
from tests.webhooks.conftest import oas_webhook_examples, post_signed
from webhooks.models import BankFeedSourceAccount, EventState, WebhookEvent, WriteOutcome
from webhooks.services import webhook_event_process


def pytest_generate_tests(metafunc):
    if "oas_example" not in metafunc.fixturenames:
        return
    try:
        examples = oas_webhook_examples()
    except pytest.skip.Exception as skipped:
        metafunc.parametrize(
            "oas_example", [pytest.param(None, marks=pytest.mark.skip(str(skipped)))]
        )
        return
    metafunc.parametrize(
        "oas_example",
        [pytest.param(example, id=f"{example[1]}-{example[2]}") for example in examples],
    )


def generated(body) -> datetime:
    return datetime.fromisoformat(body["generatedDate"].replace("Z", "+00:00"))


def test_both_documents_give_examples_for_every_event_type():
    keys = {key for _, key, _, _ in oas_webhook_examples()}
    assert len(keys) == 18
    assert {"bankFeeds.sourceAccount.connected", "{dataType}.write.unsuccessful"} <= keys


@pytest.mark.django_db
def test_an_example_is_accepted_and_applied(
    oas_example, client, webhook_secret, settings, redis_url, monkeypatch
):
    _, key, _, body = oas_example
    settings.REDIS_URL = redis_url
    payload = body["payload"]
    pauses = []
    monkeypatch.setattr(
        "codat.fleet_pause.pause_codat_calls_until",
        lambda redis_client, moment: pauses.append(moment) or True,
    )
    if key == "company.product.removed":
        company = CompanyFactory(codat_id=uuid.UUID(payload["id"]))
        CompanyProductFactory(company=company, product=ProductFactory(identifier="lending"))
    else:
        ProductFactory(identifier="lending")

    # when
    response, headers = post_signed(client, body, webhook_secret)
    event = WebhookEvent.objects.get(webhook_id=headers["webhook-id"])
    state = webhook_event_process(event_pk=event.pk)

    # then
    assert response.status_code == 202
    assert state == EventState.APPLIED, event.state_reason
    at = generated(body)
    if key in ("company.created", "company.deleted"):
        company = Company.objects.get(codat_id=payload["id"])
        assert company.name == payload["name"]
        assert company.tags == payload["tags"]
        assert company.last_event_at == at
        assert (company.codat_deleted_at is not None) == (key == "company.deleted")
    elif key.startswith("company.product."):
        company = Company.objects.get(codat_id=payload["id"])
        status = CompanyProduct.objects.get(company=company, product__identifier="lending").status
        assert status == ("active" if key.endswith("added") else "removed")
    elif key.startswith("connection."):
        connection = Connection.objects.get(codat_id=payload["connection"]["id"])
        assert connection.status == payload["connection"]["status"]
        assert connection.errors == payload["connection"].get("dataConnectionErrors", [])
        assert connection.company.codat_id == uuid.UUID(payload["referenceCompany"]["id"])
        assert connection.last_event_at == at
        assert (connection.codat_deleted_at is not None) == (key == "connection.deleted")
    elif key.startswith("read.completed"):
        for entry in payload["dataTypes"]:
            row = DataTypeStatus.objects.get(
                company__codat_id=payload["referenceCompany"]["id"], data_type=entry["dataType"]
            )
            assert row.current_status == entry["status"]
            assert row.last_read_issues == entry["issues"]
            assert row.last_event_at == at
            # The first read of a company carries recordsModified false; it still brought them.
            assert row.records_last_modified_at == at
    elif ".write." in key:
        outcome = WriteOutcome.objects.get(push_operation_key=payload["id"])
        assert outcome.status == payload["status"]
        assert outcome.operation_type == payload["type"]
        assert outcome.record_id == payload.get("record", {}).get("id", "")
        assert outcome.attachment_id == payload.get("attachmentId", "")
    elif key == "client.rateLimit.reached":
        assert pauses == [datetime(2024, 9, 1, 12, 14, 14, tzinfo=UTC)]
    elif key == "client.rateLimit.reset":
        assert pauses == []
    elif key.startswith("bankFeeds.sourceAccount."):
        account = BankFeedSourceAccount.objects.get(account_id=payload["sourceAccount"]["id"])
        assert account.feed_connected == key.endswith(".connected")
        assert account.account_name == payload["sourceAccount"]["accountName"]
    else:
        pytest.fail(f"no assertion for {key}")


@pytest.mark.django_db
def test_rate_limit_reached_pauses_every_worker_until_expiry_and_reset_lifts_it(
    client, webhook_secret, settings, redis_url
):
    import redis

    from codat.fleet_pause import codat_calls_paused_until

    settings.REDIS_URL = redis_url
    redis_client = redis.Redis.from_url(redis_url)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    expiry = now + timedelta(hours=2)
    reached = {
        "id": str(uuid.uuid4()),
        "eventType": "client.rateLimit.reached",
        "generatedDate": now.isoformat(),
        "payload": {"dailyQuota": 12000, "quotaRemaining": 0, "expiryDate": expiry.isoformat()},
    }
    reset = {
        **reached,
        "eventType": "client.rateLimit.reset",
        "generatedDate": (now + timedelta(seconds=1)).isoformat(),
    }

    _, headers = post_signed(client, reached, webhook_secret)
    webhook_event_process(event_pk=WebhookEvent.objects.get(webhook_id=headers["webhook-id"]).pk)
    assert codat_calls_paused_until(redis_client) == expiry
    assert 0 < redis_client.ttl("codat:paused_until") <= 7200

    _, headers = post_signed(client, reset, webhook_secret)
    webhook_event_process(event_pk=WebhookEvent.objects.get(webhook_id=headers["webhook-id"]).pk)
    assert codat_calls_paused_until(redis_client) is None

    # A delayed delivery of the older "reached" does not pause again.
    _, headers = post_signed(client, reached, webhook_secret)
    state = webhook_event_process(
        event_pk=WebhookEvent.objects.get(webhook_id=headers["webhook-id"]).pk
    )
    assert state == EventState.SUPERSEDED
    assert codat_calls_paused_until(redis_client) is None
