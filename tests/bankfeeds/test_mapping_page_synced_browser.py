"""The SMB's page in Chromium after the bank's transactions have landed at Codat: each account
shows how many synced and the deliveries with their outcome (JavaScript off, as the owner may
have it). Pushes run through the real pusher against the sandbox over HTTP, the rows in this
process. (The README's screenshot of this page comes from test_tour_bank_feeds.py.)"""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bankfeeds.models import BankTransaction
from bankfeeds.services import (
    account_push_next,
    mapping_link_path,
    pushes_round,
    source_account_create,
    transactions_submit,
)
from tests.bankfeeds.helpers import ACCOUNT, run_due_operations, transactions
from tests.bankfeeds.test_flow import _mapped, _onboarded, _sandbox_pushes
from tests.consent.test_browser import browser  # noqa: F401 (the fixture)
from tests.portal.test_tour import SCREEN

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def _push_until_synced(account) -> None:
    for _ in range(10):
        account_push_next(account_id=account.pk)
        run_due_operations()
        pushes_round()  # asks Codat about Pending pushes (no webhook reaches this test)
        run_due_operations()
        if not BankTransaction.objects.filter(account=account).exclude(state="synced").exists():
            return
    raise AssertionError("transactions still not synced")


@override_settings(BANK_FEEDS_POLL_PENDING_SECONDS=0)
def test_after_pushes_land_the_owner_sees_what_synced_and_the_deliveries(
    browser,  # noqa: F811
    live_server,
    sandbox,
    operations_env,
):
    # given a mapped account whose 1,200 transactions the pusher has delivered in two pushes
    sandbox.control("PUT", "push", {"delaySeconds": 0, "outcome": "Success"})
    connection = _onboarded(sandbox, name="Harbour Coffee")
    account = source_account_create(connection=connection, data={"id": "acc-1", **ACCOUNT})
    run_due_operations()
    now = timezone.now()
    _mapped(sandbox, connection, "acc-1", now - timedelta(days=2))
    rows = transactions(1200, start=now - timedelta(days=2), step=timedelta(minutes=2))
    transactions_submit(account=account, rows=rows)
    _push_until_synced(account)
    # and two more dated tomorrow: the pusher never sends a transaction before its time
    transactions_submit(
        account=account,
        rows=transactions(2, start=now + timedelta(days=1), prefix="later"),
    )
    remote = _sandbox_pushes(sandbox, connection.company)
    assert sum(len(push["data"]["transactions"]) for push in remote) == 1200

    # when the owner opens the page and continues
    context = browser.new_context(java_script_enabled=False, locale="en-GB", viewport=SCREEN)
    page = context.new_page()
    page.goto(live_server.url + mapping_link_path(connection=connection))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/bank-feeds/mapping/")

    # then the account's section says what synced, in words
    section = page.get_by_role("region", name="Business Current (GBP, checking)")
    assert section.get_by_role("heading", name="What has synced").is_visible()
    figures = dict(
        zip(
            section.locator("dt").all_inner_texts(),
            section.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert figures["Synced"] == "1200"
    assert figures["Waiting to be sent"] == "2"
    assert figures["Being sent"] == "0"
    assert "The latest transaction in your accounting software is from" in section.inner_text()
    # and the deliveries, newest first, with their outcome
    deliveries = section.get_by_role("table", name="Latest deliveries")
    body_rows = deliveries.locator("tbody tr")
    assert body_rows.count() == 2
    cells = [body_rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert [(row[1], row[3]) for row in cells] == [("200", "Success"), ("1000", "Success")]
    context.close()
