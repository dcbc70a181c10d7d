"""One audit trail (issue 17): every staff action that changes something is recorded by the
service that does it, with who, how, when, from where, on what and what changed; nobody can
change an entry, not even with SQL; admins and compliance search and export it."""

import csv
import io

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from audit.context import acting
from audit.models import AuditEntry, Via
from audit.services import audit_record
from operations.models import Job
from operations.services import operations_start
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    JobFactory,
    OperationFactory,
    ProductFactory,
    StaffFactory,
)
from webhooks.models import WebhookConsumer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

STAFF_ADDRESS = "203.0.113.9"


def entries(action):
    return list(AuditEntry.objects.filter(action=action))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_database_refuses_to_change_or_delete_an_entry():
    entry = audit_record(action="test.something", target_label="x")

    for statement in (
        "UPDATE audit_auditentry SET actor = 'someone else' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])

    entry.refresh_from_db()
    assert entry.actor == ""


def test_a_bulk_action_is_recorded_with_who_how_where_on_what_and_what_changed(
    client, django_capture_on_commit_callbacks
):
    operator = StaffFactory(role="operator")
    client.force_login(operator)
    product = ProductFactory(name="Lending", kind="standard")
    companies = CompanyFactory.create_batch(3)
    CompanyProductFactory(company=companies[0], product=product)

    client.post(
        reverse("admin:companies_company_confirm_operation"),
        {
            "kind": "add_product",
            "company_ids": ",".join(str(c.pk) for c in companies),
            "product": product.pk,
            "confirm": "1",
        },
        REMOTE_ADDR=STAFF_ADDRESS,
    )

    job = Job.objects.get()
    [entry] = entries("operations.start")
    assert (entry.actor_id, entry.actor, entry.via, entry.ip) == (
        operator.pk,
        operator.username,
        Via.SESSION,
        STAFF_ADDRESS,
    )
    assert (entry.target_type, entry.target_id) == ("operations.job", str(job.pk))
    assert entry.changes["kind"] == "add_product"
    assert entry.changes["product"] == product.identifier
    assert entry.changes["queued"] == 2
    assert entry.changes["company_ids"] == sorted(c.pk for c in companies[1:])


def test_retry_and_cancel_are_recorded_against_the_job(client):
    operator = StaffFactory(role="operator")
    client.force_login(operator)
    job = JobFactory()
    failed = OperationFactory(job=job, product=job.product, state="failed")
    CompanyProductFactory(company=failed.company, product=job.product, status="failed")
    OperationFactory(job=job, product=job.product, state="pending")

    client.post(reverse("admin:operations_job_retry_failed", args=[job.pk]))
    client.post(reverse("admin:operations_job_cancel_rest", args=[job.pk]))

    [retry] = entries("operations.retry_failed")
    [cancel] = entries("operations.cancel_rest")
    assert (retry.actor, retry.target_id, retry.changes["retried"]) == (
        operator.username,
        str(job.pk),
        1,
    )
    assert (cancel.actor, cancel.target_id, cancel.changes["cancelled"]) == (
        operator.username,
        str(job.pk),
        2,
    )


def test_registering_and_deleting_a_webhook_consumer_are_recorded(client):
    admin_user = StaffFactory(role="admin")
    client.force_login(admin_user)

    client.post(
        reverse("admin:webhooks_webhookconsumer_add"),
        {"url": "https://portal.example/webhooks/codat/", "event_types": ["read.completed"]},
    )
    consumer = WebhookConsumer.objects.get()
    client.post(
        reverse("admin:webhooks_webhookconsumer_changelist"),
        {"action": "delete_at_codat", "_selected_action": [consumer.pk]},
    )

    [registered] = entries("webhooks.consumer_register")
    [deleted] = entries("webhooks.consumer_delete")
    assert registered.actor == deleted.actor == admin_user.username
    assert registered.changes["url"] == "https://portal.example/webhooks/codat/"
    assert registered.changes["event_types"] == ["read.completed"]
    assert deleted.target_id == str(consumer.pk)


def test_an_api_key_is_named_as_the_actor_when_the_api_acts():
    product = ProductFactory(kind="custom")
    company = CompanyFactory()
    CompanyProductFactory(company=company, product=product)

    with acting(via=Via.API_KEY, api_key="crm-integration", ip="198.51.100.7"):
        operations_start(kind="refresh_product", company_ids=[company.pk], product=product)

    [entry] = entries("operations.start")
    assert (entry.via, entry.api_key, entry.ip, entry.actor) == (
        Via.API_KEY,
        "crm-integration",
        "198.51.100.7",
        "",
    )


def test_the_portals_own_scheduled_work_is_not_recorded_as_an_action():
    product = ProductFactory(kind="custom")
    company = CompanyFactory()
    CompanyProductFactory(company=company, product=product)

    operations_start(kind="refresh_product", company_ids=[company.pk], product=product)

    assert not AuditEntry.objects.exists()


def test_sign_ins_and_failed_sign_ins_are_recorded_with_the_address(client):
    user = StaffFactory(role="viewer")
    user.set_password("correct horse battery staple")
    user.save()
    login = reverse("admin:login")

    client.post(login, {"username": user.username, "password": "wrong"}, REMOTE_ADDR=STAFF_ADDRESS)
    client.post(
        login,
        {"username": user.username, "password": "correct horse battery staple"},
        REMOTE_ADDR=STAFF_ADDRESS,
    )

    [failed] = entries("auth.sign_in_failed")
    [signed_in] = entries("auth.signed_in")
    assert (failed.actor_id, failed.actor, failed.ip) == (None, user.username, STAFF_ADDRESS)
    assert "wrong" not in str(failed.changes)
    assert (signed_in.actor_id, signed_in.ip, signed_in.via) == (
        user.pk,
        STAFF_ADDRESS,
        Via.SESSION,
    )


def test_a_change_made_in_the_admins_forms_is_recorded(client):
    """Catalogue, schedule and staff-account edits go through the admin's change log."""
    from products.models import DataType

    admin_user = StaffFactory(role="admin")
    client.force_login(admin_user)
    data_type = DataType.objects.order_by("pk").first()

    client.post(
        reverse("admin:products_datatype_change", args=[data_type.pk]),
        {"name": "Invoices you sent", "description": data_type.description},
    )

    [entry] = entries("admin.changed")
    assert (entry.actor, entry.target_type, entry.target_id) == (
        admin_user.username,
        "products.datatype",
        str(data_type.pk),
    )
    assert entry.changes["admin"] == [{"changed": {"fields": ["Name"]}}]


@pytest.mark.parametrize(
    "role, status", [("viewer", 403), ("operator", 403), ("admin", 200), ("compliance", 200)]
)
def test_only_admins_and_compliance_read_the_trail(client, signed_in, role, status):
    signed_in(role)
    changelist = reverse("admin:audit_auditentry_changelist")

    assert client.get(changelist).status_code == status
    assert client.get(reverse("admin:audit_auditentry_export")).status_code == status


def test_the_trail_is_searched_filtered_and_exported_as_safe_csv(client, signed_in):
    signed_in("compliance")
    audit_record(action="consent.text_publish", target_label='=HYPERLINK("http://x")')
    audit_record(action="operations.start", target_label="Acme Bakery Ltd")
    changelist = reverse("admin:audit_auditentry_changelist")

    found = client.get(changelist, {"q": "Acme"}).content.decode()
    filtered = client.get(changelist, {"action": "consent.text_publish"}).content.decode()
    export = client.get(reverse("admin:audit_auditentry_export"), {"q": "HYPERLINK"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))

    assert "Acme Bakery Ltd" in found and "HYPERLINK" not in found
    assert "HYPERLINK" in filtered and "Acme Bakery Ltd" not in filtered
    assert rows[0][:2] == ["at", "actor"]
    assert len(rows) == 2
    assert rows[1][8] == '\'=HYPERLINK("http://x")'


def test_nobody_edits_or_deletes_an_entry_in_the_admin(client, signed_in):
    signed_in("admin")
    entry = audit_record(action="test.something")

    change = client.post(
        reverse("admin:audit_auditentry_change", args=[entry.pk]), {"action": "edited"}
    )
    delete = client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"})

    assert change.status_code == 403 and delete.status_code == 403
    entry.refresh_from_db()
    assert entry.action == "test.something"


def test_a_replay_is_recorded_with_the_events(client, settings):
    import json
    import uuid
    from datetime import UTC, datetime

    from tests.webhooks.conftest import (
        connection_payload,
        event_body,
        new_secret,
        post_signed,
    )
    from webhooks.models import WebhookEvent

    settings.CODAT_WEBHOOK_SECRETS = [new_secret()]
    body = event_body(
        "connection.connected",
        datetime(2026, 3, 1, tzinfo=UTC),
        connection_payload(uuid.uuid4(), uuid.uuid4(), "Linked"),
    )
    post_signed(client, json.dumps(body), settings.CODAT_WEBHOOK_SECRETS[0])
    event = WebhookEvent.objects.get()
    operator = StaffFactory(role="operator")
    client.force_login(operator)

    client.post(
        reverse("admin:webhooks_webhookevent_changelist"),
        {"action": "replay", "_selected_action": [event.pk]},
    )

    [entry] = entries("webhooks.replay")
    assert (entry.actor, entry.changes["event_ids"]) == (operator.username, [event.pk])
    assert entry.changes["outcomes"] == {"applied": 1}


def test_consent_recorded_on_a_customers_behalf_and_a_published_text_are_recorded(client):
    from consent.models import ConsentEvent
    from products.services import product_define

    product = product_define(
        identifier="lending",
        name="Lending",
        kind="custom",
        description="To decide on your loan.",
        data_types=["invoices", "balanceSheet"],
    )
    company = CompanyFactory()
    operator = StaffFactory(role="operator")
    client.force_login(operator)

    client.post(
        reverse("admin:consent_companyconsent_record", args=[company.pk]),
        {"product": product.pk, "action": "grant", "confirm": "on"},
    )

    event = ConsentEvent.objects.get()
    [entry] = entries("consent.recorded_for_customer")
    assert (entry.actor, entry.target_id) == (operator.username, str(company.pk))
    assert (entry.changes["event"], entry.changes["consent_action"]) == (event.pk, "grant")
    # the catalogue's first text for the product was published, by the portal itself
    [published] = entries("consent.text_publish")
    assert (published.actor, published.changes["version"]) == ("", 1)
