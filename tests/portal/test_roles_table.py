"""The README's "Staff roles" table is what each role holds (issue 17, hole 3): every right a
row names is granted, and nothing it does not name. Webhook consumers, which decide where Codat
sends company data, are an admin's."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from core.roles import PORTAL_APPS
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parent.parent.parent / "README.md"

# Each phrase of the table's rows, and the permissions it stands for. A phrase added to the
# README without an entry here fails the test: the table and the code must say the same.
OPERATOR_PHRASES = {
    "add or remove products": {"companies.run_operations"},
    "refresh data": {"companies.run_operations"},
    "replay webhooks": {"webhooks.replay_event"},
    "send consent requests": {"consent.send_consent_requests"},
    "record consent on a customer's behalf": {"consent.record_consent_for_customer"},
}
ADMIN_PHRASES = {
    "the product catalogue": {"products.change_product", "products.add_product"},
    "consent texts": {"consent.add_consenttext"},
    "the plain-language data-type texts": {"products.change_datatype"},
    "schedules": {"django_celery_beat.change_periodictask"},
    "Codat's sync settings": {"syncsettings.change_sync_settings"},
    "dual-sync guard overrides": {"syncsettings.override_dual_sync"},
    "webhook consumers": {"webhooks.manage_consumers"},
    "sync migration runs": {"syncmigration.run_sync_migration", "syncmigration.add_migrationrun"},
    "staff accounts": {"auth.add_user", "auth.change_user"},
    "erase companies (GDPR)": {"companies.erase_company"},
}


def readme_roles() -> dict[str, str]:
    section = README.read_text().split("## Staff roles", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", section, re.M))


def phrases(text: str, prefix: str) -> list[str]:
    assert text.startswith(prefix), text
    items = re.split(r", | and ", text.removeprefix(prefix))
    return [item.strip() for item in items if item.strip()]


def held(role: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def every_view_permission() -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=PORTAL_APPS, codename__startswith="view_"
        ).values_list("content_type__app_label", "codename")
    }


COMPLIANCE_PHRASES = {
    "read the audit trail": {"audit.view_auditentry"},
    "export a company's data": {"audit.export_company_data"},
}


def test_the_readme_table_names_the_four_roles():
    assert list(readme_roles()) == ["viewer", "operator", "admin", "compliance"]


def test_a_viewer_holds_exactly_reading_everything():
    assert readme_roles()["viewer"] == "read everything"
    assert held("viewer") == every_view_permission()


def test_an_operator_holds_exactly_reading_and_the_rights_its_row_names():
    named = phrases(readme_roles()["operator"], "read everything and run operations: ")
    unknown = [phrase for phrase in named if phrase not in OPERATOR_PHRASES]
    assert not unknown, f"the README names rights the test does not know: {unknown}"

    expected = every_view_permission().union(*(OPERATOR_PHRASES[phrase] for phrase in named))

    assert held("operator") == expected
    assert "webhooks.manage_consumers" not in held("operator")


def test_an_admin_holds_what_an_operator_does_and_every_configuration_its_row_names():
    named = phrases(readme_roles()["admin"], "also edit ")
    unknown = [phrase for phrase in named if phrase not in ADMIN_PHRASES]
    assert not unknown, f"the README names rights the test does not know: {unknown}"

    admin = held("admin")

    assert held("operator") <= admin
    for phrase in named:
        assert ADMIN_PHRASES[phrase] <= admin, phrase


def test_compliance_holds_exactly_reading_everything_and_the_rights_its_row_names():
    named = phrases(readme_roles()["compliance"], "read everything and also: ")
    unknown = [phrase for phrase in named if phrase not in COMPLIANCE_PHRASES]
    assert not unknown, f"the README names rights the test does not know: {unknown}"

    expected = every_view_permission().union(*(COMPLIANCE_PHRASES[phrase] for phrase in named))

    assert held("compliance") == expected
    assert "companies.run_operations" not in held("compliance")
    assert "audit.view_auditentry" not in held("viewer") | held("operator")
    assert "audit.view_auditentry" in held("admin")


@pytest.mark.parametrize(
    "role, allowed", [("viewer", 403), ("operator", 403), ("admin", 200), ("compliance", 403)]
)
def test_only_admins_open_the_webhook_consumer_form(client, role, allowed):
    client.force_login(StaffFactory(role=role))
    assert client.get(reverse("admin:webhooks_webhookconsumer_add")).status_code == allowed


@pytest.mark.parametrize(
    "role, allowed", [("viewer", 403), ("operator", 403), ("admin", 200), ("compliance", 403)]
)
def test_only_admins_open_the_sync_migration_form(client, role, allowed):
    client.force_login(StaffFactory(role=role))
    assert client.get(reverse("admin:syncmigration_migrationrun_add")).status_code == allowed


def test_an_operator_cannot_register_a_consumer_pointing_at_his_own_url(client):
    from webhooks.models import WebhookConsumer

    client.force_login(StaffFactory(role="operator"))

    response = client.post(
        reverse("admin:webhooks_webhookconsumer_add"),
        {"url": "https://attacker.example/hook", "event_types": ["read.completed"]},
    )

    assert response.status_code == 403
    assert not WebhookConsumer.objects.exists()
