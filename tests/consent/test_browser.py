"""The consent journey in a real browser: Debian's Chromium driven by Playwright, JavaScript off.

An operator adds a product without consent; a mail scanner fetches the link first; the owner
opens it twice, presses Continue, grants with the keyboard, reads the receipt, withdraws on the
manage page; the remove-product operation is then there.

Without /usr/bin/chromium (or Playwright) the test is skipped, except under CI, where it fails:
.ci/run installs both. CONSENT_SCREENSHOTS=1 also writes docs/screenshots/consent-*.png.
"""

import json
import os
from pathlib import Path

import pytest
from django.db import connections

from consent import services
from consent.models import ConsentEvent
from operations.models import Operation, OperationKind
from products.models import CompanyProduct
from tests.factories import StaffFactory

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def playwright_or_skip():
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install -r requirements.txt)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"The browser test must run in CI: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture
def browser(monkeypatch):
    sync_playwright = playwright_or_skip()
    # Playwright's sync API runs an event loop in this thread, so Django takes every ORM call
    # made while it runs (the test's, and the database flush after it) for one from async code.
    # They are plain synchronous calls made between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
        # The ORM calls made while the loop ran went through connections of their own (Django
        # keeps them per async context): close those too, or PostgreSQL cannot drop the test
        # database at the end of the session while they are still open.
        connections.close_all()


@pytest.fixture(autouse=True)
def migrated_rows():
    """The roles and data types migrations made: a transactional test that ran before this one
    (any suite that sorts earlier) flushed them."""
    from core.roles import create_roles
    from tests.operations.helpers import ensure_data_types

    create_roles()
    ensure_data_types(["invoices", "balanceSheet", "bankAccounts"])


def screenshot(page, tmp_path, name):
    page.screenshot(path=str(tmp_path / f"consent-{name}.png"), full_page=True)
    if os.environ.get("CONSENT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"consent-{name}.png"), full_page=True)


def test_grant_receipt_withdraw_in_chromium(
    browser, live_server, settings, tmp_path, company, product, celery_app_on_redis
):
    settings.CONSENT_BASE_URL = live_server.url

    # given: an operator adds Lending without consent, so the add waits and a link is issued
    operator = StaffFactory(role="operator", first_name="Olive", last_name="Ops")
    outcome = services.product_add_or_request_consent(
        company=company, product=product, user=operator
    )
    assert not outcome.added
    assert not Operation.objects.filter(kind=OperationKind.ADD_PRODUCT).exists()

    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    requests_seen = []
    page.on("request", lambda request: requests_seen.append(request.url))

    # given: a mail scanner fetches the link in a browser of its own before the owner does
    scanner = browser.new_context(java_script_enabled=False)
    scanned = scanner.new_page()
    scanned.goto(outcome.issued.url)
    assert scanned.get_by_role("button", name="Continue").is_visible()
    scanner.close()

    # when: the owner opens the link, then opens it again (the GETs spend nothing)
    page.goto(outcome.issued.url)
    page.reload()
    assert page.url == outcome.issued.url
    assert page.get_by_role("heading", level=1).inner_text().startswith("Northwind Lending plc")
    screenshot(page, tmp_path, "continue")

    # ...and presses Continue, with the keyboard only: the token leaves the address bar
    page.get_by_role("button", name="Continue").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/consent/")
    assert outcome.issued.token not in page.url
    assert page.get_by_role("heading", level=1).inner_text().startswith("Northwind Lending plc")
    assert page.get_by_role("heading", name="Use case: Lending").is_visible()
    for name in ("Invoices", "Balance sheet"):
        assert page.get_by_text(name, exact=True).first.is_visible()
    optional = page.get_by_label("Bank accounts")
    assert not optional.is_checked()
    screenshot(page, tmp_path, "request")

    # ...ticks the optional data type and agrees, with the keyboard only
    optional.focus()
    page.keyboard.press("Space")
    assert optional.is_checked()
    page.get_by_role("button", name="I agree to share this data").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/consent/receipt/**")

    # then: the receipt shows what was agreed, and the add went ahead by itself
    grant = ConsentEvent.objects.get(action="grant")
    assert grant.data_types == ["balanceSheet", "bankAccounts", "invoices"]
    assert page.get_by_role("heading", name="Your consent receipt").is_visible()
    assert str(grant.receipt_id) in page.content()
    assert grant.text_hash in page.content()
    screenshot(page, tmp_path, "receipt")
    (add,) = Operation.objects.filter(kind=OperationKind.ADD_PRODUCT, company=company)
    assert add.requested_by == operator

    # the JSON receipt is Kantara-shaped
    receipt = json.loads(
        page.request.get(f"{live_server.url}/consent/receipt/{grant.receipt_id}.json").text()
    )
    assert receipt["consentReceiptID"] == str(grant.receipt_id)
    assert receipt["services"][0]["purposes"][0]["consentType"] == "EXPLICIT"

    # Codat confirms the add (the worker is not part of this test).
    CompanyProduct.objects.filter(company=company, product=product).update(status="active")

    # when: the owner goes to "Manage my consent" and withdraws: one press
    page.get_by_role("link", name="Manage my consent").click()
    page.wait_for_url("**/consent/manage/")
    screenshot(page, tmp_path, "manage")
    page.get_by_role("button", name="Withdraw my consent for Lending").click()
    page.wait_for_url("**/consent/receipt/**")
    assert "withdrawn" in page.get_by_role("heading", level=2).first.inner_text()

    # then: the removal is written and the evidence is complete
    (removal,) = Operation.objects.filter(
        kind=OperationKind.REMOVE_PRODUCT, company=company, product=product
    )
    assert removal.state == "pending"
    withdraw = ConsentEvent.objects.get(action="withdraw")
    assert (withdraw.channel, withdraw.data_types) == ("manage", grant.data_types)

    # The token link is spent: a second visit gets the "not valid" page.
    page.goto(outcome.issued.url)
    assert page.get_by_role("heading", name="This link is not valid").is_visible()

    # Every request stayed on this server: no third-party assets.
    assert requests_seen
    assert all(url.startswith(live_server.url) for url in requests_seen), requests_seen
    context.close()
