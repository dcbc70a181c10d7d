"""The SMB's mapping page in a real browser (Debian's Chromium via Playwright, JavaScript off):
the link is exchanged on Continue, the page lists the account with what Codat offers, the owner
picks one with the keyboard, and after the operation runs the account shows Connected.

The operation rows run in this process between browser steps (the sandbox answers over HTTP)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bankfeeds.models import MappingStatus, SourceAccount
from bankfeeds.services import mapping_link_path, source_account_create
from operations.models import Operation, OperationKind
from tests.bankfeeds.helpers import ACCOUNT, run_due_operations
from tests.bankfeeds.test_flow import _onboarded
from tests.consent.test_browser import browser  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def test_the_owner_maps_an_account_in_chromium_and_sees_it_connected(
    browser,  # noqa: F811
    live_server,
    sandbox,
    operations_env,
):
    # given a Xero bank-feeds connection (mapped through the API) with one account at Codat
    connection = _onboarded(sandbox, platform="gbol")
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    link = live_server.url + mapping_link_path(connection=connection)
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    page = context.new_page()

    # when the owner opens the link (a GET spends nothing) and presses Continue
    page.goto(link)
    assert not Operation.objects.filter(kind=OperationKind.READ_BANK_FEED_MAPPING).exists()
    page.get_by_role("button", name="Continue").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/bank-feeds/mapping/")
    run_due_operations()  # the mapping read the session started
    page.reload()

    # then the account is listed, pending, with the accounts Codat offers in its currency
    section = page.get_by_role("region", name="Business Current (GBP, checking)")
    assert section.locator(".status").inner_text() == "Pending (not mapped)"
    offered = section.get_by_role("radio")
    assert offered.count() == 3  # two offered, and "create a new account"
    assert "GBP" in section.get_by_text("Business Current Account (GBP)").inner_text()

    # when the owner chooses the first offered account and a start date, with the keyboard
    section.get_by_label("Business Current Account (GBP)").check()
    start = (timezone.now() - timedelta(days=3)).date().isoformat()
    section.get_by_label("Start the feed from (optional)").fill(start)
    section.get_by_role("button", name="Connect Business Current").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/bank-feeds/mapping/#account-{account.pk}")
    run_due_operations()
    page.get_by_role("link", name="Check the status again").click()

    # then it shows Connected, and so does the portal
    section = page.get_by_role("region", name="Business Current (GBP, checking)")
    assert section.locator(".status").inner_text() == "Connected"
    assert section.get_by_role("button").count() == 0
    account = SourceAccount.objects.get(pk=account.pk)
    assert account.mapping_status == MappingStatus.CONNECTED
    assert account.target_account_id.startswith("target-gbp")
    context.close()


def test_a_forged_or_unknown_link_gets_the_not_valid_page(client, sandbox, operations_env):
    response = client.get("/bank-feeds/link/not-a-signed-value/")
    assert response.status_code == 404
    assert client.get("/bank-feeds/mapping/").status_code == 404
