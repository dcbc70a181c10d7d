"""The README's bank-feeds tour on `make run`'s stack and demo data, in Chromium: an operator
onboards a company for Xero bank feeds and creates its account in the admin, the owner maps the
account on the mapping page, the operator uploads a CSV of transactions, and the pusher, the
worker and the sandbox's write webhooks take them to synced: the account's admin page and the
owner's page say so. TOUR_SCREENSHOTS=1 writes the README's docs/screenshots/bank-feeds-*.png."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.portal.devstack_process import running_devstack
from tests.portal.test_tour import SCREEN, browser, screenshot  # noqa: F401 (browser: the fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TRANSACTIONS = 30


def _reload_until(page, check, *, timeout=90, message="") -> None:
    def shown() -> bool:
        page.reload()
        return check()

    wait_until(shown, timeout=timeout, interval=1.0, message=message)


def _csv(now: datetime) -> str:
    """A statement of TRANSACTIONS card payments over the last day, with running balances
    (Xero needs them)."""
    lines = ["id,date,amount,balance,transactionType,description"]
    balance = 1520.50
    for number in range(TRANSACTIONS):
        when = now - timedelta(hours=24) + timedelta(minutes=30 * number)
        amount = -(number % 7 + 2.25)
        balance += amount
        lines.append(
            f"tour-{number},{when:%Y-%m-%dT%H:%M:%S},{amount:.2f},{balance:.2f},Debit,"
            f"Card payment {number}"
        )
    return "\n".join(lines) + "\n"


def test_the_bank_feeds_tour_on_make_runs_demo_data(tmp_path, browser):  # noqa: F811
    with running_devstack(tmp_path) as stack:
        admin = stack.admin_url
        username, password = stack.login
        context = browser.new_context(viewport=SCREEN, locale="en-GB")
        page = context.new_page()
        page.goto(admin + "login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(admin)

        # Onboard a new company for Xero bank feeds.
        page.goto(admin + "bankfeeds/bankfeedconnection/add/")
        page.get_by_label("Company name").fill("Harbour Coffee")
        page.get_by_label("Platform").select_option(label="Xero")
        screenshot(page, "bank-feeds-onboard")
        page.get_by_role("button", name="Onboard").click()
        page.wait_for_url(re.compile(r".*/bankfeeds/bankfeedconnection/$"))
        row = page.get_by_role("row", name=re.compile("Harbour Coffee"))
        _reload_until(
            page,
            lambda: "Created" in row.inner_text(),
            message="the company and its connection were not created at Codat",
        )

        # Create the bank's account on it.
        page.goto(admin + "bankfeeds/sourceaccount/add/")
        page.get_by_label("Connection").select_option(label="Harbour Coffee · Xero")
        page.get_by_label("Account id (the bank's)").fill("acc-current-01")
        page.get_by_label("Account name").fill("Business Current")
        page.get_by_label("Account type").select_option("checking")
        page.get_by_label("Account number").fill("12345678")
        page.get_by_label("Sort code (GBP accounts)").fill("040004")
        page.get_by_label("Currency").fill("GBP")
        page.get_by_label("Balance").fill("1520.50")
        page.get_by_role("button", name="Create").click()
        page.wait_for_url(re.compile(r".*/bankfeeds/sourceaccount/\d+/change/$"))
        account_url = page.url
        _reload_until(
            page,
            lambda: "At Codat" in page.locator(".field-state").inner_text(),
            message="the account was not created at Codat",
        )

        # The connection's page gives the owner's links.
        page.goto(admin + "bankfeeds/bankfeedconnection/")
        page.get_by_role("link", name=re.compile("Harbour Coffee")).first.click()
        mapping_link = page.locator(".field-mapping_page code").inner_text().strip()
        screenshot(page, "bank-feeds-connection")

        # The owner maps the account on their page.
        owner = browser.new_context(viewport=SCREEN, locale="en-GB", java_script_enabled=False)
        smb = owner.new_page()
        smb.goto(mapping_link)
        smb.get_by_role("button", name="Continue").click()
        smb.wait_for_url(re.compile(r".*/bank-feeds/mapping/$"))
        section = smb.get_by_role("region", name="Business Current (GBP, checking)")
        _reload_until(
            smb,
            lambda: section.get_by_role("radio").count() > 1,
            message="Codat's target accounts did not reach the page",
        )
        section.get_by_role("radio").first.check()
        screenshot(smb, "bank-feeds-mapping")
        section.get_by_role("button", name="Connect Business Current").click()
        _reload_until(
            smb,
            lambda: section.locator(".status").inner_text() == "Connected",
            message="the account did not become Connected",
        )

        # The operator uploads the bank's transactions (the API takes the same).
        now = datetime.now(tz=UTC).replace(tzinfo=None)
        page.goto(account_url)
        page.get_by_role("link", name="Upload transactions (CSV)").click()
        csv_path = tmp_path / "statement.csv"
        csv_path.write_text(_csv(now))
        page.get_by_label("File").set_input_files(str(csv_path))
        page.get_by_role("button", name="Upload").click()
        page.wait_for_url(account_url)
        assert f"{TRANSACTIONS} transaction(s) stored" in page.locator(".messagelist").inner_text()

        # The pusher sends them; the write webhook brings the outcome.
        _reload_until(
            page,
            lambda: (
                f"Synced: {TRANSACTIONS}" in page.locator(".field-transaction_states").inner_text()
            ),
            message="the transactions did not reach synced",
        )
        assert "Success" in page.locator(".inline-group").inner_text()
        screenshot(page, "bank-feeds-account")

        # The owner's page says what synced.
        smb.reload()
        figures = dict(
            zip(
                section.locator("dt").all_inner_texts(),
                section.locator("dd").all_inner_texts(),
                strict=True,
            )
        )
        assert figures["Synced"] == str(TRANSACTIONS)
        deliveries = section.get_by_role("table", name="Latest deliveries")
        assert deliveries.locator("td.outcome").all_inner_texts() == ["Success"]
        screenshot(smb, "bank-feeds-synced")
        owner.close()
        context.close()
