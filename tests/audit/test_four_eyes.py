"""Four-eyes (issue 17): a bulk action above the admins' threshold waits; its maker cannot
approve it; a second person's approval runs it; all three steps are on the audit trail."""

import pytest
from django.urls import reverse

from approvals import services
from approvals.models import ApprovalRequest, ApprovalState
from audit.models import AuditEntry
from operations.models import Job, Operation
from tests.factories import CompanyFactory, ProductFactory, StaffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

CONFIRM = "admin:companies_company_confirm_operation"


@pytest.fixture
def thresholds():
    policy = services.policy()
    policy.bulk_action_over = 3
    policy.product_removal_over = 1
    policy.save()
    return policy


def confirm_add(client, companies, product):
    return client.post(
        reverse(CONFIRM),
        {
            "kind": "add_product",
            "company_ids": ",".join(str(c.pk) for c in companies),
            "product": product.pk,
            "confirm": "1",
        },
    )


def decide(client, approval, button):
    return client.post(
        reverse("admin:approvals_approvalrequest_decide", args=[approval.pk]),
        {button: "1", "reason": "not today"},
        follow=True,
    )


def test_a_bulk_action_above_the_threshold_waits_the_maker_cannot_approve_a_second_person_does(
    client, thresholds
):
    maker, checker = StaffFactory(role="operator"), StaffFactory(role="operator")
    product = ProductFactory(name="Lending", kind="standard")
    companies = CompanyFactory.create_batch(4)

    # the maker's bulk action waits
    client.force_login(maker)
    response = confirm_add(client, companies, product)
    approval = ApprovalRequest.objects.get()
    assert response["Location"] == reverse(
        "admin:approvals_approvalrequest_change", args=[approval.pk]
    )
    assert (approval.state, approval.maker) == (ApprovalState.PENDING, maker)
    assert not Operation.objects.exists()
    pending = client.get(reverse("admin:approvals_approvalrequest_changelist"), follow=True)
    assert "add product Lending: 4 companies" in pending.content.decode()

    # the maker cannot approve it
    page = decide(client, approval, "approve")
    approval.refresh_from_db()
    assert approval.state == ApprovalState.PENDING
    assert "A second person must decide" in page.content.decode()
    assert not Operation.objects.exists()

    # a second person's approval runs it, in the maker's name
    client.force_login(checker)
    assert (
        "Approve and run"
        in client.get(
            reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
        ).content.decode()
    )
    decide(client, approval, "approve")
    approval.refresh_from_db()
    job = Job.objects.get()
    assert (approval.state, approval.checker) == (ApprovalState.APPROVED, checker)
    assert job.operations.count() == 4
    assert job.requested_by == maker

    # all three steps are on the trail
    trail = list(
        AuditEntry.objects.filter(action__startswith="approvals.")
        .order_by("pk")
        .values_list("action", "actor")
    )
    assert trail == [
        ("approvals.requested", maker.username),
        ("approvals.approved", checker.username),
    ]
    started = AuditEntry.objects.get(action="operations.start")
    assert (started.actor, started.target_id) == (maker.username, str(job.pk))


def test_a_refusal_runs_nothing_and_is_on_the_trail(client, thresholds):
    maker, checker = StaffFactory(role="operator"), StaffFactory(role="admin")
    product = ProductFactory(kind="standard")
    client.force_login(maker)
    confirm_add(client, CompanyFactory.create_batch(4), product)
    approval = ApprovalRequest.objects.get()

    client.force_login(checker)
    decide(client, approval, "refuse")

    approval.refresh_from_db()
    assert (approval.state, approval.outcome) == (ApprovalState.REFUSED, "not today")
    assert not Operation.objects.exists()
    assert AuditEntry.objects.get(action="approvals.refused").actor == checker.username


def test_at_or_below_the_threshold_the_action_runs_at_once(client, thresholds):
    client.force_login(StaffFactory(role="operator"))

    confirm_add(client, CompanyFactory.create_batch(3), ProductFactory(kind="standard"))

    assert not ApprovalRequest.objects.exists()
    assert Operation.objects.count() == 3


def test_removing_a_product_has_its_own_lower_threshold():
    policy = services.policy()
    policy.bulk_action_over, policy.product_removal_over = 100, 1
    policy.save()

    assert services.operations_need_approval(kind="remove_product", company_count=2)
    assert not services.operations_need_approval(kind="add_product", company_count=2)


def test_someone_who_may_not_run_operations_cannot_approve_them(client, thresholds):
    maker = StaffFactory(role="operator")
    client.force_login(maker)
    confirm_add(client, CompanyFactory.create_batch(4), ProductFactory(kind="standard"))
    approval = ApprovalRequest.objects.get()

    with pytest.raises(services.ApprovalError, match="allowed to do this"):
        services.approval_decide(
            approval=approval, checker=StaffFactory(role="compliance"), approve=True
        )

    approval.refresh_from_db()
    assert approval.state == ApprovalState.PENDING


def test_publishing_a_consent_text_waits_for_a_second_admin_when_the_policy_says_so(client):
    from consent.models import ConsentText
    from consent.services import consent_text_publish

    policy = services.policy()
    policy.consent_text_publish = True
    policy.save()
    maker, checker = StaffFactory(role="admin"), StaffFactory(role="admin")
    product = ProductFactory(kind="custom")
    first = consent_text_publish(product=product)
    client.force_login(maker)

    client.post(
        reverse("admin:consent_consenttext_add"),
        {"product": product.pk, "purpose": "A new purpose.", "retention": first.retention},
    )

    assert ConsentText.objects.filter(product=product).count() == 1
    approval = ApprovalRequest.objects.get()
    client.force_login(checker)
    decide(client, approval, "approve")
    latest = ConsentText.objects.filter(product=product).order_by("-version").first()
    assert (latest.version, latest.purpose, latest.created_by) == (2, "A new purpose.", maker)


def test_registering_a_consumer_waits_for_a_second_admin_when_the_policy_says_so(client):
    from webhooks.models import WebhookConsumer

    policy = services.policy()
    policy.consumer_changes = True
    policy.save()
    maker = StaffFactory(role="admin")
    client.force_login(maker)

    client.post(
        reverse("admin:webhooks_webhookconsumer_add"),
        {"url": "https://portal.example/webhooks/codat/", "event_types": ["read.completed"]},
    )

    assert not WebhookConsumer.objects.exists()
    approval = ApprovalRequest.objects.get()
    # an operator may not run what only admins may do
    with pytest.raises(services.ApprovalError):
        services.approval_decide(
            approval=approval, checker=StaffFactory(role="operator"), approve=True
        )
    client.force_login(StaffFactory(role="admin"))
    decide(client, approval, "approve")
    consumer = WebhookConsumer.objects.get()
    assert consumer.url == "https://portal.example/webhooks/codat/"
    assert AuditEntry.objects.get(action="webhooks.consumer_register").actor == maker.username
