"""A company's data export (GDPR): everything the portal holds about it, as JSON, for
compliance and admins only; the export itself is on the audit trail."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    OperationFactory,
    ProductFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db


def export_url(company):
    return reverse("admin:audit_company_export", args=[company.pk])


def test_the_export_holds_the_company_and_everything_that_points_at_it(client):
    officer = StaffFactory(role="compliance")
    client.force_login(officer)
    company, other = CompanyFactory(name="Acme Bakery Ltd"), CompanyFactory(name="Other Ltd")
    product = ProductFactory(kind="custom")
    ConnectionFactory(company=company)
    CompanyProductFactory(company=company, product=product)
    ConsentEventFactory(company=company, product=product)
    OperationFactory(company=company, product=product)
    ConnectionFactory(company=other)

    response = client.get(export_url(company))

    assert response.status_code == 200
    document = json.loads(response.content)
    tables = document["tables"]
    assert document["company"]["name"] == "Acme Bakery Ltd"
    assert len(tables["companies.connection"]) == 1
    assert len(tables["products.companyproduct"]) == 1
    assert len(tables["consent.consentevent"]) == 1
    assert len(tables["operations.operation"]) == 1
    assert "Other Ltd" not in response.content.decode()
    assert "token_hash" not in response.content.decode()
    entry = AuditEntry.objects.get(action="gdpr.company_export")
    assert (entry.actor, entry.target_id) == (officer.username, str(company.pk))


@pytest.mark.parametrize(
    "role, status", [("viewer", 403), ("operator", 403), ("admin", 200), ("compliance", 200)]
)
def test_only_compliance_and_admins_export_a_company(client, role, status):
    client.force_login(StaffFactory(role=role))

    assert client.get(export_url(CompanyFactory())).status_code == status


def test_compliance_cannot_run_operations(client):
    client.force_login(StaffFactory(role="compliance"))
    company = CompanyFactory()

    response = client.post(
        reverse("admin:companies_company_confirm_operation"),
        {"kind": "refresh_all_data", "company_ids": str(company.pk), "confirm": "1"},
    )

    assert response.status_code == 403
