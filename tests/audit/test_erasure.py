"""GDPR erasure of a company (issue 17): deleted at Codat (the sandbox), then the portal's copies,
all but the consent evidence, which the scheduled retention run deletes once its text's
retention has passed. The consent log's trigger refuses every other delete."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.urls import reverse

from approvals.models import ApprovalRequest, ApprovalState, FourEyesPolicy
from approvals.services import approval_decide, company_erase_or_request_approval
from audit.company_export import company_data_export
from audit.models import AuditEntry
from bankfeeds.models import BankFeedConnection
from companies.erasure import ErasureRefused, company_erase
from companies.models import (
    Company,
    CompanyErasure,
    Connection,
    DataTypeStatus,
    ErasureState,
    PullOperation,
)
from consent.models import ConsentEvent, ConsentRequest
from consent.services import consent_request_create, consent_text_publish
from consent.tasks import consent_evidence_retention_task
from operations.models import Job, Operation, OperationKind
from operations.worker import operation_run
from portal.schedules import periodic_tasks
from products.models import CompanyProduct
from tests.factories import (
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    DataTypeStatusFactory,
    JobFactory,
    OperationFactory,
    ProductFactory,
    PullOperationFactory,
    StaffFactory,
)
from tests.operations.helpers import make_fleet
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]

RETENTION_DAYS = 30


def four_eyes(on: bool) -> None:
    FourEyesPolicy.objects.update_or_create(pk=1, defaults={"company_erasure": on})


def company_with_history(company, product):
    """Something in every table that holds a company's data, and consent evidence."""
    ConnectionFactory(company=company)
    DataTypeStatusFactory(company=company)
    PullOperationFactory(company=company)
    CompanyProductFactory(company=company, product=product)
    job = JobFactory(product=product, description=f"Add Lending to {company.name}")
    OperationFactory(company=company, product=product, job=job, state="succeeded")
    OperationFactory(
        kind=OperationKind.CREATE_COMPANY,
        company=company,
        product=None,
        state="succeeded",
        parameters={"name": company.name, "description": "owner: Ann Example"},
    )
    WebhookEvent.objects.create(
        webhook_id=f"msg_{uuid.uuid4().hex}",
        event_type="company.updated",
        company=company,
        company_codat_id=company.codat_id,
        body=f'{{"payload": {{"name": "{company.name}"}}}}',
        state="applied",
    )
    # An event the ledger never tied to the row, about the same company.
    WebhookEvent.objects.create(
        webhook_id=f"msg_{uuid.uuid4().hex}",
        company_codat_id=company.codat_id,
        body="{}",
        state="quarantined",
    )
    BankFeedConnection.objects.create(company=company, platform="gbol")
    consent_request_create(
        company=company, products=[product], email="ann@example.com", send_email=False
    )
    ConsentEventFactory(company=company, product=product)
    ConsentEventFactory(company=company, product=product, action="withdraw")


def rows_about(company) -> dict[str, int]:
    return {
        "connections": Connection.objects.filter(company=company).count(),
        "data-type statuses": DataTypeStatus.objects.filter(company=company).count(),
        "pulls": PullOperation.objects.filter(company=company).count(),
        "product assignments": CompanyProduct.objects.filter(company=company).count(),
        "operations": Operation.objects.filter(company=company)
        .exclude(kind=OperationKind.DELETE_COMPANY)
        .count(),
        "webhook events": WebhookEvent.objects.filter(company_codat_id=company.codat_id).count(),
        "bank feeds": BankFeedConnection.objects.filter(company=company).count(),
        "consent e-mail addresses": ConsentRequest.objects.filter(company=company)
        .exclude(email="")
        .count(),
    }


def ordinary_delete_refused(event_pk: int) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM consent_consentevent WHERE id = %s", [event_pk])
    except DatabaseError as error:
        return "append-only" in str(error)
    return False


def test_an_erased_company_is_gone_at_codat_and_here_but_its_evidence_until_retention_ends(
    sandbox, operations_env
):
    # given: two companies at Codat with history in the portal; consent texts keep evidence
    # 30 days after an erasure
    four_eyes(False)
    admin_user = StaffFactory(role="admin")
    erased, kept = make_fleet(sandbox, 2)
    product = ProductFactory(kind="custom")
    consent_text_publish(product=product, retention_days=RETENTION_DAYS)
    company_with_history(erased, product)
    company_with_history(kept, product)
    kept_before = rows_about(kept)
    erased_name = erased.name

    # the export still holds everything before the erasure
    export = company_data_export(company=erased)
    assert export["company"]["name"] == erased_name
    assert len(export["tables"]["consent.consentevent"]) == 2

    # when: an admin erases it and the worker makes the call
    erasure = company_erase(company=erased, requested_by=admin_user)
    delete_row = Operation.objects.get(kind=OperationKind.DELETE_COMPANY, company=erased)
    assert operation_run(operation_id=delete_row.pk) == "succeeded"

    # then: gone at Codat
    assert sandbox.request("GET", f"/companies/{erased.codat_id}").status_code == 404
    assert sandbox.request("GET", f"/companies/{kept.codat_id}").status_code == 200
    # gone from the portal's tables, the other company untouched
    assert set(rows_about(erased).values()) == {0}
    assert rows_about(kept) == kept_before
    assert not Job.objects.filter(description__contains=erased_name).exists()
    row = Company.objects.get(pk=erased.pk)
    assert (row.name, row.description, row.tags, row.redirect) == ("Erased company", "", {}, "")
    # the consent evidence is kept, and the tombstone says who erased it
    assert ConsentEvent.objects.filter(company=erased).count() == 2
    erasure.refresh_from_db()
    assert erasure.state == ErasureState.ERASED
    assert erasure.requested_by == admin_user.username
    assert erasure.erased_at is not None
    # the consent log still refuses an ordinary delete
    assert ordinary_delete_refused(ConsentEvent.objects.filter(company=erased).first().pk)

    # a scheduled run before the retention has passed deletes nothing
    assert consent_evidence_retention_task()["events deleted"] == 0
    assert ConsentEvent.objects.filter(company=erased).count() == 2

    # when: the clock has moved past the retention (the erasure is 31 days old)
    CompanyErasure.objects.filter(pk=erasure.pk).update(
        erased_at=F("erased_at") - timedelta(days=RETENTION_DAYS + 1)
    )
    counts = consent_evidence_retention_task()

    # then: the evidence, the requests and the emptied row are gone; the tombstone stays
    assert counts == {"events deleted": 2, "companies done": 1}
    assert not Company.objects.filter(codat_id=erased.codat_id).exists()
    assert not ConsentEvent.objects.filter(company_id=erased.pk).exists()
    assert not ConsentRequest.objects.filter(company_id=erased.pk).exists()
    assert not Operation.objects.filter(company_id=erased.pk).exists()
    tombstone = CompanyErasure.objects.get(codat_id=erased.codat_id)
    assert tombstone.state == ErasureState.EVIDENCE_PURGED
    assert erased_name not in str(CompanyErasure.objects.filter(pk=tombstone.pk).values().get())
    # the other company's evidence is untouched, and an ordinary delete is still refused
    assert ConsentEvent.objects.filter(company=kept).count() == 2
    assert ordinary_delete_refused(ConsentEvent.objects.filter(company=kept).first().pk)
    # every step is on the trail, under the erasure, never the company's name
    trail = AuditEntry.objects.filter(action__startswith="gdpr.company_eras").values_list(
        "action", "target"
    )
    assert {action for action, _ in trail} == {
        "gdpr.company_erasure_requested",
        "gdpr.company_erased",
    }
    assert all(erased_name not in target for _, target in trail)
    assert AuditEntry.objects.filter(action="gdpr.consent_evidence_deleted").exists()


def test_a_late_webhook_about_an_erased_company_is_not_applied_nor_kept(sandbox, operations_env):
    from webhooks.services import webhook_event_process

    four_eyes(False)
    (company,) = make_fleet(sandbox, 1)
    company_erase(company=company, requested_by=StaffFactory(role="admin"))
    delete_row = Operation.objects.get(kind=OperationKind.DELETE_COMPANY, company=company)
    assert operation_run(operation_id=delete_row.pk) == "succeeded"
    late = WebhookEvent.objects.create(
        webhook_id=f"msg_{uuid.uuid4().hex}",
        body=json.dumps(
            {
                "id": str(uuid.uuid4()),
                "eventType": "company.updated",
                "generatedDate": "2030-01-01T00:00:00Z",
                "payload": {"id": str(company.codat_id), "name": "Brought back Ltd"},
            }
        ),
    )

    assert webhook_event_process(event_pk=late.pk) == "superseded"

    late.refresh_from_db()
    assert late.body == ""
    assert "erased" in late.state_reason
    assert not Company.objects.filter(name="Brought back Ltd").exists()


def test_erasure_waits_for_a_second_admin_and_the_maker_cannot_approve(sandbox, operations_env):
    four_eyes(True)
    maker, checker = StaffFactory(role="admin"), StaffFactory(role="admin")
    (company,) = make_fleet(sandbox, 1)

    erasure, approval = company_erase_or_request_approval(company=company, maker=maker)

    assert erasure is None
    assert not Operation.objects.filter(kind=OperationKind.DELETE_COMPANY).exists()
    with pytest.raises(Exception, match="second person"):
        approval_decide(approval=approval, checker=maker, approve=True)
    approval = approval_decide(approval=approval, checker=checker, approve=True)
    assert approval.state == ApprovalState.APPROVED
    tombstone = CompanyErasure.objects.get(codat_id=company.codat_id)
    assert (tombstone.approval_id, tombstone.requested_by) == (approval.pk, maker.username)
    delete_row = Operation.objects.get(kind=OperationKind.DELETE_COMPANY, company=company)
    assert operation_run(operation_id=delete_row.pk) == "succeeded"
    assert sandbox.request("GET", f"/companies/{company.codat_id}").status_code == 404
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"approvals.requested", "approvals.approved", "gdpr.company_erased"} <= actions


@pytest.mark.parametrize("role", ["viewer", "operator", "compliance"])
def test_only_admins_erase(client, role, sandbox, operations_env):
    four_eyes(False)
    user = StaffFactory(role=role)
    (company,) = make_fleet(sandbox, 1)
    client.force_login(user)

    response = client.post(
        reverse("admin:audit_company_erase", args=[company.pk]),
        {"codat_id": str(company.codat_id)},
    )

    assert response.status_code == 403
    with pytest.raises(ErasureRefused):
        company_erase(company=company, requested_by=user)
    assert not CompanyErasure.objects.exists()
    assert not ApprovalRequest.objects.exists()


def test_the_erase_page_asks_for_the_codat_id_and_starts_the_erasure(
    client, sandbox, operations_env
):
    four_eyes(False)
    admin_user = StaffFactory(role="admin")
    (company,) = make_fleet(sandbox, 1)
    client.force_login(admin_user)
    page = reverse("admin:audit_company_erase", args=[company.pk])
    assert page in client.get(reverse("admin:companies_company_change", args=[company.pk])).text

    wrong = client.post(page, {"codat_id": str(uuid.uuid4())})
    assert wrong.status_code == 200
    assert "This is not the Codat id of this company." in wrong.text
    assert not CompanyErasure.objects.exists()

    response = client.post(page, {"codat_id": str(company.codat_id).upper()})
    assert response.status_code == 302
    assert CompanyErasure.objects.get().state == ErasureState.REQUESTED
    assert client.get(response.url).status_code == 200
    assert client.get(reverse("admin:audit_company_erase", args=[987654])).status_code == 404
    # a second request while the first runs is refused with the reason
    again = client.post(page, {"codat_id": str(company.codat_id)})
    assert "already" in again.text


def test_the_retention_run_is_scheduled_daily():
    (entry,) = [
        entry
        for entry in periodic_tasks()
        if entry["task"] == "consent.tasks.consent_evidence_retention"
    ]
    assert entry["every"] == 24 * 60 * 60
