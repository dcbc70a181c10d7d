"""The demo is believable: Codat's example catalogue and companies in every connection state."""

import pytest
from django.core.management import call_command

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from products.models import CompanyProduct, Product

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_the_catalogue_and_a_few_dozen_companies():
    call_command("seed_demo")

    assert set(Product.objects.values_list("identifier", flat=True)) >= {
        "lending",
        "bank-feeds",
        "expenses",
    }
    custom = Product.objects.filter(kind="custom")
    assert sorted(product.schedule_display for product in custom) == [
        "daily at 23:00 UTC",
        "hourly",
    ]
    shared = set.intersection(
        *(set(product.data_types.values_list("identifier", flat=True)) for product in custom)
    )
    assert "payments" in shared

    assert 24 <= Company.objects.count() <= 60
    statuses = set(Connection.objects.values_list("status", flat=True))
    assert statuses == {"PendingAuth", "Linked", "Unlinked", "Deauthorized"}
    assert Company.objects.filter(connections__isnull=True).exists()
    assert CompanyProduct.objects.filter(status="active").exists()
    assert DataTypeStatus.objects.filter(current_status="Complete").exists()
    assert DataTypeStatus.objects.exclude(current_status="Complete").exists()
    assert PullOperation.objects.exists()


def test_seeding_twice_updates_instead_of_duplicating():
    call_command("seed_demo")
    counts = (Company.objects.count(), Connection.objects.count(), PullOperation.objects.count())
    call_command("seed_demo")
    assert (
        Company.objects.count(),
        Connection.objects.count(),
        PullOperation.objects.count(),
    ) == counts
