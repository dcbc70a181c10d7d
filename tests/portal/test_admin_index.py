"""The admin's menu reaches the portal's own pages, which no model list links: a "Pages" module
on the home page and in the sidebar of every admin page."""

import re

import pytest
from django.urls import reverse

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def page_links(content: str) -> dict[str, str]:
    """The first "Pages" module of the page as {link text: address}."""
    module = re.search(r'<div class="app-pages module[^"]*">(.*?)</div>', content, re.S)
    assert module, "the page has no Pages module"
    return {
        text: href.replace("&amp;", "&")
        for href, text in re.findall(
            r'<th scope="row"[^>]*>\s*<a href="([^"]+)"[^>]*>([^<]+)</a>', module.group(1)
        )
    }


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_admin_home_links_stale_reads_scheduled_reads_jobs_and_migrations_for_every_role(
    client, role
):
    client.force_login(StaffFactory(role=role))

    response = client.get(reverse("admin:index"))

    stale = reverse("admin:operations_operation_stale")
    assert page_links(response.content.decode()) == {
        "Dashboard": reverse("admin:index"),
        "Your passkeys": reverse("admin:passkeys"),
        "Stale reads": stale,
        "Scheduled reads": f"{stale}?all=1",
        "Jobs": reverse("admin:operations_job_changelist"),
        "Sync settings": reverse("admin:syncsettings_clientsyncsettings_changelist"),
        "Migration runs": reverse("admin:syncmigration_migrationrun_changelist"),
    }
    # The models are still listed under the pages.
    assert b"Companies (Codat mirror)" in response.content


def test_each_page_the_admin_home_links_opens_for_a_viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    content = client.get(reverse("admin:index")).content.decode()

    for url in page_links(content).values():
        assert client.get(url).status_code == 200, url


def test_a_staff_member_without_the_operations_permissions_sees_no_pages_module(client):
    client.force_login(StaffFactory())

    content = client.get(reverse("admin:index")).content.decode()

    assert 'class="app-pages module' not in content


def test_every_admin_page_has_the_pages_in_its_sidebar(client):
    client.force_login(StaffFactory(role="viewer"))

    content = client.get(reverse("admin:companies_company_changelist")).content.decode()

    sidebar = content[content.index('<nav class="sticky" id="nav-sidebar"') :]
    assert page_links(sidebar)["Stale reads"] == reverse("admin:operations_operation_stale")


def test_the_admin_menu_names_third_party_apps_in_words(client):
    # A superuser (make run's) sees every app, third-party ones included.
    client.force_login(StaffFactory(role="admin", is_superuser=True))

    content = client.get(reverse("admin:index")).content.decode()

    headings = re.findall(r'<caption>\s*<a [^>]*class="section"[^>]*>([^<]+)</a>', content)
    assert {
        "Two-factor: authenticator apps",
        "Two-factor: recovery codes",
        "Sign-in attempts and lockouts",
    } <= set(headings), "; ".join(headings)
    assert not [heading for heading in headings if "_" in heading or heading == "Axes"], headings
