"""The company detail carries each product's freshness from the per-product table, and what an
API key changes is recorded in the audit trail under that key."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry, Via
from companies.services import product_read_mirror_from_event, product_reads_follow
from products.models import CompanyProduct
from products.services import product_define
from tests.api.conftest import call, make_key
from tests.factories import CompanyFactory, CompanyProductFactory

pytestmark = pytest.mark.django_db


def test_the_company_detail_gives_each_products_freshness_counted_for_that_product(settings):
    settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES = 30
    lending = product_define(
        identifier="lending",
        name="Lending",
        kind="custom",
        schedule_kind="hourly",
        data_types=["invoices", "bills"],
    )
    monitoring = product_define(
        identifier="monitoring",
        name="Monitoring",
        kind="custom",
        schedule_kind="hourly",
        data_types=["invoices"],
    )
    company = CompanyFactory()
    long_ago = timezone.now() - timedelta(hours=3)
    for product in (lending, monitoring):
        CompanyProductFactory(company=company, product=product, status_changed_at=long_ago)
    product_read_mirror_from_event(
        company=company,
        product_identifier="monitoring",
        data_type="invoices",
        status="Complete",
        issues=[],
        observed_at=timezone.now(),
    )

    response = call("get", reverse("api:company", args=[company.codat_id]), make_key(["read"]))

    assert response.status_code == 200, response.content
    assert response.json()["freshness"] == {
        "lending": {"scheduled": 2, "stale": 2, "failing": 0},
        "monitoring": {"scheduled": 1, "stale": 0, "failing": 0},
    }
    # Removing a product takes its reads out of the picture.
    held = CompanyProduct.objects.filter(company=company, product=lending)
    held.update(status="removed")
    product_reads_follow(held)
    response = call("get", reverse("api:company", args=[company.codat_id]), make_key(["read"]))
    assert set(response.json()["freshness"]) == {"monitoring"}


def test_a_change_made_with_an_api_key_is_in_the_audit_trail_under_the_key(world):
    key = make_key(["operate"], name="Onboarding")

    response = call("post", reverse("api:job-retry", args=[world.job.pk]), key, body={})

    assert response.status_code in (200, 201, 202), response.content
    entry = AuditEntry.objects.get(action="operations.retry_failed")
    assert entry.via == Via.API_KEY
    assert entry.api_key.startswith("Onboarding (cpk_")
    assert entry.target_id == str(world.job.pk)
