"""The admin: company-list actions through a confirmation page, the job page, the timeline,
the stale list; every change gated on companies.run_operations."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from operations import limiter
from operations.admin import _estimate_text
from operations.models import Job, Operation
from products.models import CompanyProduct
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    JobFactory,
    OperationFactory,
    ProductFactory,
    StaffFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

CHANGELIST = "admin:companies_company_changelist"
CONFIRM = "admin:companies_company_confirm_operation"


@pytest.fixture
def operator(client):
    client.force_login(StaffFactory(role="operator"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def run_action(client, action, companies):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [c.pk for c in companies]},
    )


def test_viewers_get_no_actions_and_cannot_post_the_confirmation(viewer):
    company = CompanyFactory()
    response = viewer.get(reverse(CHANGELIST))
    assert b"add_product_action" not in response.content
    response = viewer.post(
        reverse(CONFIRM), {"kind": "add_product", "company_ids": str(company.pk), "confirm": "1"}
    )
    assert response.status_code == 403
    assert not Operation.objects.exists()


def test_add_product_goes_through_a_confirmation_that_says_what_will_happen(
    operator, no_celery, django_capture_on_commit_callbacks
):
    # given three companies, one of which already has the product
    product = ProductFactory(name="Lending", kind="standard")
    companies = CompanyFactory.create_batch(3)
    CompanyProductFactory(company=companies[0], product=product)
    # when the operator picks the action
    response = run_action(operator, "add_product_action", companies)
    assert response.status_code == 200
    assert b"You selected <strong>3</strong> companies" in response.content
    assert not Operation.objects.exists()
    ids = ",".join(str(c.pk) for c in companies)
    # and reviews it
    response = operator.post(
        reverse(CONFIRM), {"kind": "add_product", "company_ids": ids, "product": product.pk}
    )
    content = response.content.decode()
    assert "What will happen" in content
    assert "<strong>2</strong> companies: one call to Codat each" in content
    assert "<li>Already has Lending: 1</li>" in content
    assert not Operation.objects.exists()
    # and confirms
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            reverse(CONFIRM),
            {"kind": "add_product", "company_ids": ids, "product": product.pk, "confirm": "1"},
        )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:operations_job_change", args=[job.pk])
    assert job.operations.count() == 2
    assert job.requested_by.username.startswith("staff")
    assert sorted(no_celery[0]) == sorted(job.operations.values_list("pk", flat=True))


def test_a_standard_product_refresh_is_refused_with_the_reason_on_the_page(operator):
    product = ProductFactory(name="Lending", kind="standard")
    company = CompanyFactory()
    CompanyProductFactory(company=company, product=product)
    response = operator.post(
        reverse(CONFIRM),
        {"kind": "refresh_product", "company_ids": str(company.pk), "product": product.pk},
    )
    assert b"Codat does not refresh standard products" in response.content
    assert not Operation.objects.exists()


def test_the_job_page_shows_progress_counts_and_failures(operator):
    job = JobFactory()
    OperationFactory(job=job, product=job.product, state="succeeded")
    OperationFactory(
        job=job,
        product=job.product,
        state="failed",
        last_error="Product cash-flow does not exist",
        last_error_status=404,
        last_error_correlation_id="corr-123",
    )
    OperationFactory(job=job, product=job.product, state="pending")
    response = operator.get(reverse("admin:operations_job_change", args=[job.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert '<progress id="job-bar" max="3" value="2"' in content
    assert "Product cash-flow does not exist" in content
    assert "corr-123" in content
    assert offered_buttons(content) == {"Retry failed", "Cancel the rest"}
    progress = operator.get(reverse("admin:operations_job_progress", args=[job.pk])).json()
    assert progress["counts"]["failed"] == 1
    assert progress["percent"] == 66.7
    assert progress["done"] is False
    assert progress["retry_offered"] is True and progress["cancel_offered"] is True


def offered_buttons(content: str) -> set[str]:
    """The job page's buttons an operator sees: rendered, and neither they nor their row hidden
    (the live progress script flips the same `hidden` attributes)."""
    row = re.search(r'<div id="job-actions"([^>]*)>', content)
    if row is None or "hidden" in row.group(1):
        return set()
    forms = re.findall(
        r'<form id="job-[a-z-]+"([^>]*)>.*?type="submit" value="([^"]+)"', content, re.S
    )
    return {label for attributes, label in forms if "hidden" not in attributes}


@pytest.mark.parametrize(
    ("states", "buttons"),
    [
        (("succeeded", "joined"), set()),
        (("succeeded", "cancelled"), set()),
        (("succeeded", "failed"), {"Retry failed"}),
        (("running", "succeeded"), set()),
        (("running", "pending"), {"Cancel the rest"}),
    ],
)
def test_the_job_page_offers_retry_only_for_failed_rows_and_cancel_only_for_pending_ones(
    operator, states, buttons
):
    job = JobFactory()
    for state in states:
        OperationFactory(job=job, product=job.product, state=state)

    page = operator.get(reverse("admin:operations_job_change", args=[job.pk])).content.decode()
    progress = operator.get(reverse("admin:operations_job_progress", args=[job.pk])).json()

    assert offered_buttons(page) == buttons
    assert progress["retry_offered"] is ("Retry failed" in buttons)
    assert progress["cancel_offered"] is ("Cancel the rest" in buttons)


def test_retry_failed_and_cancel_the_rest(operator, no_celery):
    job = JobFactory()
    failed = OperationFactory(job=job, product=job.product, state="failed")
    CompanyProductFactory(company=failed.company, product=job.product, status="failed")
    waiting = OperationFactory(job=job, product=job.product, state="pending")
    operator.post(reverse("admin:operations_job_retry_failed", args=[job.pk]))
    failed.refresh_from_db()
    assert failed.state == "pending"
    assert CompanyProduct.objects.get(company=failed.company).status == "pending_add"
    operator.post(reverse("admin:operations_job_cancel_rest", args=[job.pk]))
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"


def test_viewers_cannot_retry_or_cancel(viewer):
    job = JobFactory()
    OperationFactory(job=job, product=job.product, state="failed")
    response = viewer.get(reverse("admin:operations_job_change", args=[job.pk]))
    assert response.status_code == 200
    assert b"Retry failed" not in response.content
    assert (
        viewer.post(reverse("admin:operations_job_retry_failed", args=[job.pk])).status_code == 403
    )
    assert (
        viewer.post(reverse("admin:operations_job_cancel_rest", args=[job.pk])).status_code == 403
    )


def test_the_company_page_shows_its_operations_newest_first(viewer):
    company = CompanyFactory()
    OperationFactory(company=company, kind="add_product", state="succeeded")
    OperationFactory(company=company, kind="refresh_all_data", product=None, state="joined")
    response = viewer.get(reverse("admin:companies_company_change", args=[company.pk]))
    content = response.content.decode()
    assert "timeline: operations, webhook events and consent, newest first" in content.lower()
    assert content.index("Refresh all data") < content.index("Add product")


def test_the_stale_list_flags_reads_overdue_beyond_the_grace(viewer, settings):
    from companies.services import product_read_mirror_from_event

    settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES = 30
    product = ProductFactory(schedule_kind="hourly", data_types=["invoices", "bills"])
    company = CompanyFactory(name="Overdue Ltd")
    CompanyProductFactory(
        company=company, product=product, status_changed_at=timezone.now() - timedelta(hours=3)
    )
    product_read_mirror_from_event(
        company=company,
        product_identifier=product.identifier,
        data_type="bills",
        status="Complete",
        issues=[],
        observed_at=timezone.now(),
    )
    response = viewer.get(reverse("admin:operations_operation_stale"))
    content = response.content.decode()
    assert "Overdue Ltd" in content
    assert "invoices" in content
    assert "bills" not in content
    response = viewer.get(reverse("admin:operations_operation_stale") + "?all=1")
    assert "bills" in response.content.decode()


@pytest.mark.parametrize("name", ["job", "operation"])
def test_operation_and_job_lists_render(viewer, name):
    job = JobFactory()
    OperationFactory(job=job, product=job.product)
    assert viewer.get(reverse(f"admin:operations_{name}_changelist")).status_code == 200


def test_the_operation_list_says_what_each_row_acts_on_in_a_fixed_number_of_queries(viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks.consumers import webhook_consumer_register

    product = ProductFactory(name="Lending")
    OperationFactory(company=CompanyFactory(name="Harbour Coffee"), product=product)
    url = reverse("admin:operations_operation_changelist")
    with CaptureQueriesContext(connection) as first:
        viewer.get(url)
    webhook_consumer_register(url="https://portal.example/hooks/", event_types=["read.completed"])
    for index in range(5):
        OperationFactory(company=CompanyFactory(name=f"Company {index}"), product=product)

    with CaptureQueriesContext(connection) as second:
        page = viewer.get(url).content.decode()

    assert "Harbour Coffee · Lending" in page
    assert "webhook consumer https://portal.example/hooks/" in page
    assert len(second) == len(first)


@pytest.fixture
def sixty_calls_a_minute():
    """The fleet's budget at one call a second, so estimates come out in round numbers."""
    limiter.configure(per_minute=60, headroom=0.0)
    yield
    limiter.clear_configuration()


def what_will_happen(content: str) -> str:
    """The confirmation page's plan, as the reader sees it: tags dropped, spaces folded."""
    start = content.index("<h2>What will happen</h2>")
    module = content[start : content.index("</div>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", module).split())


def test_the_confirmation_speaks_of_one_company_in_the_singular_and_leaves_no_stray_space(
    operator, sixty_calls_a_minute
):
    product = ProductFactory(name="Lending", kind="standard")
    queued, skipped = CompanyFactory(), CompanyFactory()
    CompanyProductFactory(company=skipped, product=product)

    response = operator.post(
        reverse(CONFIRM),
        {"kind": "add_product", "company_ids": f"{queued.pk},{skipped.pk}", "product": product.pk},
    )
    plan = what_will_happen(response.content.decode())

    assert "1 company: one call to Codat each" in plan
    assert "rate limit (about 1 second at the current budget)." in plan
    assert "0 companies already have the same operation under way" in plan
    assert "1 company is left out:" in plan
    assert "Already has Lending: 1" in plan
    assert not re.search(r"\s[.,:;]", plan), plan


def test_the_confirmation_gives_no_time_estimate_when_nothing_will_be_sent(
    operator, sixty_calls_a_minute
):
    product = ProductFactory(name="Lending", kind="standard")
    companies = CompanyFactory.create_batch(2)
    for company in companies:
        CompanyProductFactory(company=company, product=product)

    response = operator.post(
        reverse(CONFIRM),
        {
            "kind": "add_product",
            "company_ids": ",".join(str(c.pk) for c in companies),
            "product": product.pk,
        },
    )
    plan = what_will_happen(response.content.decode())

    assert "No company needs a call to Codat: nothing will be sent." in plan
    assert "about 0" not in plan
    assert "2 companies are left out:" in plan
    assert not re.search(r"\s[.,:;]", plan), plan


@pytest.mark.parametrize(
    ("calls", "per_minute", "words"),
    [
        (0, 60, ""),
        (1, 600, "under a second"),
        (1, 60, "about 1 second"),
        (80, 60, "about 80 seconds"),
        (170, 60, "about 3 minutes"),
        (6 * 3600, 60, "about 6 hours"),
    ],
)
def test_the_time_estimate_is_said_in_words(calls, per_minute, words):
    limiter.configure(per_minute=per_minute, headroom=0.0)
    try:
        assert _estimate_text(calls) == words
    finally:
        limiter.clear_configuration()


def test_retry_and_cancel_messages_count_one_operation_in_the_singular(operator, no_celery):
    job = JobFactory()
    failed = OperationFactory(job=job, product=job.product, state="failed")
    CompanyProductFactory(company=failed.company, product=job.product, status="failed")

    retried = operator.post(
        reverse("admin:operations_job_retry_failed", args=[job.pk]), follow=True
    )
    cancelled = operator.post(
        reverse("admin:operations_job_cancel_rest", args=[job.pk]), follow=True
    )

    assert [str(m) for m in retried.context["messages"]] == ["1 failed operation queued again."]
    assert [str(m) for m in cancelled.context["messages"]] == [
        "1 operation not yet started was cancelled; those already running finish."
    ]


def test_the_stale_list_states_the_grace_in_minutes(viewer, settings):
    settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES = 45

    content = viewer.get(reverse("admin:operations_operation_stale")).content.decode()

    assert "overdue by more than 45 minutes, even if nothing failed." in content
    assert "CODAT_RATE_LIMIT" not in content
    assert "0 stale reads." in content
