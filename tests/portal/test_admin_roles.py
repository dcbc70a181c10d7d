"""Each admin page renders for each role, and each role is refused what it may not do."""

import pytest
from django.urls import reverse

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from products.models import CompanyProduct, DataType, Product
from tests.factories import (
    CompanyProductFactory,
    ConnectionFactory,
    DataTypeStatusFactory,
    ProductFactory,
    PullOperationFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "operator", "admin")
MIRRORS = (Company, Connection, DataTypeStatus, PullOperation, CompanyProduct)


@pytest.fixture
def objects():
    connection = ConnectionFactory()
    product = ProductFactory(data_types=["invoices", "payments"])
    CompanyProductFactory(company=connection.company, product=product)
    DataTypeStatusFactory(company=connection.company)
    PullOperationFactory(company=connection.company, connection=connection)
    return connection


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(params=ROLES)
def role_client(request, client):
    client.force_login(StaffFactory(role=request.param))
    client.role = request.param
    return client


@pytest.mark.parametrize("model", [*MIRRORS, Product, DataType])
def test_every_list_and_detail_page_renders_for_every_role(role_client, objects, model):
    response = role_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    instance = model.objects.first()
    response = role_client.get(admin_url(model, "change", instance.pk))
    assert response.status_code == 200


def test_the_admin_index_lists_the_portal_sections(role_client):
    response = role_client.get(reverse("admin:index"))
    assert response.status_code == 200
    for section in (b"Companies (Codat mirror)", b"Products and data types"):
        assert section in response.content


@pytest.mark.parametrize("model", MIRRORS)
def test_nobody_adds_edits_or_deletes_a_codat_mirror_by_hand(role_client, objects, model):
    instance = model.objects.first()
    assert role_client.get(admin_url(model, "add")).status_code == 403
    assert (
        role_client.post(admin_url(model, "delete", instance.pk), {"post": "yes"}).status_code
        == 403
    )
    response = role_client.get(admin_url(model, "change", instance.pk))
    assert b'name="_save"' not in response.content
    assert model.objects.filter(pk=instance.pk).exists()


def product_form(product, **changes):
    data = {
        "identifier": product.identifier,
        "name": product.name,
        "kind": product.kind,
        "description": product.description,
        "schedule_kind": "daily",
        "schedule_time": "23:00",
        "product_data_types-TOTAL_FORMS": "0",
        "product_data_types-INITIAL_FORMS": "0",
        "product_data_types-MIN_NUM_FORMS": "0",
        "product_data_types-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("role, allowed", [("viewer", False), ("operator", False), ("admin", True)])
def test_only_admins_edit_the_product_catalogue(client, role, allowed):
    product = ProductFactory(name="Before")
    client.force_login(StaffFactory(role=role))
    response = client.post(
        admin_url(Product, "change", product.pk), product_form(product, name="After")
    )
    product.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert product.name == "After"
        assert product.schedule_display == "daily at 23:00 UTC"
    else:
        assert response.status_code == 403
        assert product.name == "Before"


def test_a_bad_schedule_is_refused_with_the_reason_and_changes_nothing(client):
    product = ProductFactory(name="Before")
    client.force_login(StaffFactory(role="admin"))
    response = client.post(
        admin_url(Product, "change", product.pk),
        product_form(product, name="After", schedule_time=""),
    )
    assert response.status_code == 200
    assert (
        b"product_daily_schedule_has_time" in response.content or b"errornote" in response.content
    )
    product.refresh_from_db()
    assert product.name == "Before"


@pytest.mark.parametrize("role, allowed", [("viewer", False), ("operator", False), ("admin", True)])
def test_only_admins_reword_a_data_types_description(client, role, allowed):
    client.force_login(StaffFactory(role=role))
    url = admin_url(DataType, "change", "invoices")
    response = client.post(url, {"name": "Invoices", "description": "Bills you send."})
    assert response.status_code == (302 if allowed else 403)
    assert (DataType.objects.get(pk="invoices").description == "Bills you send.") is allowed


@pytest.mark.parametrize("role, can_run", [("viewer", False), ("operator", True), ("admin", True)])
def test_operators_and_admins_may_run_operations_viewers_may_not(role, can_run):
    from core.roles import can_run_operations

    assert can_run_operations(StaffFactory(role=role)) is can_run


def test_a_staff_member_without_a_role_sees_no_portal_data(client, objects):
    client.force_login(StaffFactory())
    assert client.get(admin_url(Company, "changelist")).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(admin_url(Company, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_company_page_shows_connections_products_and_data_type_statuses(client, objects):
    client.force_login(StaffFactory(role="viewer"))
    response = client.get(admin_url(Company, "change", objects.company.pk))
    content = response.content.decode()
    assert "Xero" in content
    assert CompanyProduct.objects.get().product.name in content
    assert "invoices" in content and "Complete" in content


def test_after_migrate_the_roles_hold_the_permissions_of_every_app():
    """Permissions of apps listed after `portal` exist only late in migrate; roles get them."""
    from django.contrib.auth.models import Group

    operator = set(
        Group.objects.get(name="operator").permissions.values_list("codename", flat=True)
    )
    viewer = set(Group.objects.get(name="viewer").permissions.values_list("codename", flat=True))
    assert {"run_operations", "replay_event", "view_operation", "view_consentevent"} <= operator
    assert "replay_event" not in viewer and "view_job" in viewer
