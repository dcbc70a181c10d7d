"""API keys in the admin (admins only; the key shown once, kept hashed) and staff sessions in
the API (the scopes of their role)."""

import pytest
from django.urls import reverse

from api.models import ApiKey
from api.services import key_hash
from operations.models import Operation
from tests.api.conftest import call
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_an_admin_makes_a_key_that_is_shown_once_and_kept_only_as_its_hash(client, world):
    admin = StaffFactory(role="admin")
    client.force_login(admin)
    response = client.post(
        reverse("admin:api_apikey_add"),
        {"name": "Onboarding", "scopes": ["read", "operate"], "expires_at": ""},
    )
    assert response.status_code == 200, response.content
    raw = response.context["raw_key"]
    assert raw.startswith("cpk_") and raw in response.content.decode()
    key = ApiKey.objects.get(name="Onboarding")
    assert key.key_hash == key_hash(raw) and raw not in str(vars(key))
    assert (key.scopes, key.created_by) == (["operate", "read"], admin)
    assert not key.user.is_active and not key.user.has_usable_password()
    # Shown nowhere else: not on the key's page, not in the list.
    for url in (
        reverse("admin:api_apikey_change", args=[key.pk]),
        reverse("admin:api_apikey_changelist"),
    ):
        page = client.get(url).content.decode()
        assert key.prefix in page and raw not in page
    # It works, records its use, and its writes name it.
    listed = call("GET", "/api/v1/companies/", raw)
    assert listed.status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    url = f"/api/v1/companies/{world.company.codat_id}/products/cash-flow/remove/"
    assert call("POST", url, raw).status_code == 202
    assert Operation.objects.get(kind="remove_product").requested_by == key.user


def test_revoking_in_the_admin_stops_the_key_at_once(client, keys):
    client.force_login(StaffFactory(role="admin"))
    key = ApiKey.objects.get(name="read")
    client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert call("GET", "/api/v1/companies/", keys["read"]).status_code == 401


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_see_or_make_keys(client, role):
    client.force_login(StaffFactory(role=role))
    assert client.get(reverse("admin:api_apikey_changelist")).status_code == 403
    assert client.get(reverse("admin:api_apikey_add")).status_code == 403


@pytest.mark.parametrize(
    ("role", "reads", "operates"),
    [("viewer", True, False), ("operator", True, True), ("admin", True, True)],
)
def test_a_staff_session_has_the_scopes_of_its_role(client, world, role, reads, operates):
    client.force_login(StaffFactory(role=role))
    assert (client.get("/api/v1/companies/").status_code == 200) is reads
    url = f"/api/v1/jobs/{world.job.pk}/cancel-rest/"
    assert (client.post(url).status_code == 200) is operates


def test_a_session_write_needs_the_csrf_token(world):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(StaffFactory(role="operator"))
    response = browser.post(f"/api/v1/jobs/{world.job.pk}/cancel-rest/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_schema_and_its_pages_are_served_from_the_portal(client):
    schema = client.get("/api/v1/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    page = client.get("/api/v1/docs/").content.decode()
    assert "drf_spectacular_sidecar" in page and "cdn" not in page.lower()


def test_the_browsable_api_renders_for_staff(client, world):
    client.force_login(StaffFactory(role="operator"))
    for url in (
        "/api/v1/companies/",
        f"/api/v1/companies/{world.company.codat_id}/",
        f"/api/v1/companies/{world.company.codat_id}/consent/requests/",
        "/api/v1/jobs/",
    ):
        page = client.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page["Content-Type"].startswith("text/html")
        assert b"Acme Bakery Ltd" in page.content or "consent" in url or "jobs" in url
