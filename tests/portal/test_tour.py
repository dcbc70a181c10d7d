"""The README's tour, walked in Chromium on `make run`'s own demo data, as a newcomer walks it.

A bulk add over every company reaches a job that completes for the companies whose consent
covers the product, and consent requests for the rest; a consent link opened by GET (a mail
scanner, then the owner twice) still works when the owner presses Continue, and the add then
goes ahead by itself; the console's pages fit a 1440 px screen. TOUR_SCREENSHOTS=1 also writes
the README's admin screenshots (docs/screenshots/admin-*.png) from this run.
"""

import base64
import csv
import io
import os
import pprint
import re
import urllib.parse

import pytest
import requests

from tests.consent.test_browser import CHROMIUM, playwright_or_skip
from tests.portal.devstack_process import running_devstack
from tests.portal.test_admin_layout import OVERFLOW_SCRIPT
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SCREEN = {"width": 1440, "height": 900}
SCREENSHOTS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "screenshots")
# The demo's owners agreed to Bank Feeds for five of its thirty companies (portal/demo.py).
PRODUCT = "Bank Feeds"


def screenshot(page, name: str) -> None:
    if os.environ.get("TOUR_SCREENSHOTS") == "1":
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def links_in(data_url: str) -> dict[str, str]:
    """Company name -> consent link, from the CSV the confirmation hands over as a data: URL."""
    header, _, payload = data_url.partition(",")
    assert header == "data:text/csv;charset=utf-8;base64", header
    text = base64.b64decode(urllib.parse.unquote(payload)).decode("utf-8")
    return {row["company"]: row["consent_link"] for row in csv.DictReader(io.StringIO(text))}


def fits(page, url: str) -> dict | None:
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    measured = page.evaluate(OVERFLOW_SCRIPT)
    if measured["pageWidth"] <= measured["viewport"] and not measured["wide"]:
        return None
    return measured


@pytest.fixture
def browser():
    sync_playwright = playwright_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def test_the_readme_tour_on_make_runs_demo_data(tmp_path, browser):
    with running_devstack(tmp_path) as stack:
        admin = stack.admin_url
        username, password = stack.login
        page = browser.new_context(viewport=SCREEN, locale="en-GB").new_page()
        page.goto(admin + "login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(admin)

        # Select every company, Add a product, review what will happen.
        page.goto(admin + "companies/company/")
        screenshot(page, "admin-companies")
        page.check("#action-toggle")
        page.select_option("select[name=action]", label="Add a product to the selected companies…")
        page.click("button[name=index]")
        page.select_option("select[name=product]", label=PRODUCT)
        page.get_by_role("button", name="Review what will happen").click()
        confirm = page.get_by_role("button", name=re.compile(r"and ask \d+ for consent"))
        asked = int(re.search(r"ask (\d+) for consent", confirm.get_attribute("value")).group(1))
        added = int(re.search(r"for (\d+) compan", confirm.get_attribute("value")).group(1))
        assert added == 5 and asked > 0, confirm.get_attribute("value")
        assert page.get_by_text(f"{PRODUCT}: no consent recorded").first.is_visible()
        screenshot(page, "admin-confirm")

        # One press adds it where consent allows and asks the rest.
        confirm.click()
        assert f"{asked} companies were asked to consent to {PRODUCT}" in page.inner_text(
            "#consent-requests"
        )
        links = links_in(page.get_attribute("#consent-requests a[download]", "href"))
        assert len(links) == asked
        page.get_by_role("link", name="Follow the job").click()
        job_url = page.url

        def job_done() -> bool:
            page.goto(job_url)
            return "(done)" in page.inner_text("#content")

        wait_until(job_done, timeout=60, interval=1, message="the job never finished")
        assert re.search(r"Succeeded\s+5\b", page.inner_text("#content")), page.inner_text(
            "#content"
        )
        screenshot(page, "admin-job")

        # A mail scanner fetches the link first; the owner opens it twice: nothing is spent.
        owner_company, link = sorted(links.items())[0]
        assert link.startswith(stack.web_url + "/consent/link/"), link
        assert requests.get(link, timeout=10).status_code == 200
        owner = browser.new_context(viewport=SCREEN, locale="en-GB", java_script_enabled=False)
        customer = owner.new_page()
        customer.goto(link)
        customer.reload()
        customer.get_by_role("button", name="Continue").click()
        customer.wait_for_url(stack.web_url + "/consent/")
        customer.get_by_role("button", name="I agree to share this data").click()
        customer.wait_for_url("**/consent/receipt/**")
        assert customer.get_by_role("heading", name="Your consent receipt").is_visible()

        # The add waited for that grant and now goes ahead by itself.
        search = admin + "products/companyproduct/?" + urllib.parse.urlencode({"q": owner_company})

        def added_after_grant() -> bool:
            page.goto(search)
            rows = page.locator("#result_list tbody tr").all_inner_texts()
            return any(PRODUCT in row and "Active" in row for row in rows)

        wait_until(
            added_after_grant, timeout=60, interval=1, message=f"{PRODUCT} never reached Active"
        )

        # The console's pages fit the screen.
        page.goto(admin + "companies/company/?" + urllib.parse.urlencode({"q": owner_company}))
        page.get_by_role("link", name=owner_company).first.click()
        company_url = page.url
        company_id = re.search(r"/company/(\d+)/change/", company_url).group(1)
        screenshot(page, "admin-company")
        pages = {
            "dashboard": admin,
            "companies": admin + "companies/company/",
            "company": company_url,
            "consent-matrix": admin + f"consent/companyconsent/{company_id}/change/",
            "ledger": admin + "webhooks/webhookevent/",
            "stale-reads": admin + "operations/operation/stale/?all=1",
        }
        # The sync settings page, once the worker has read Codat's settings (seed_demo asks).
        sync_settings = admin + "syncsettings/clientsyncsettings/"

        def sync_settings_read() -> bool:
            page.goto(sync_settings)
            return page.locator("#sync-settings-table").count() == 1

        wait_until(
            sync_settings_read, timeout=60, interval=1, message="the settings were never read"
        )
        modes = page.inner_text("#sync-modes")
        assert re.search(r"Dual-sync risk: [1-9]", modes), modes
        assert re.search(r"Product-level: [1-9]", modes), modes
        assert re.search(r"Client-level: [1-9]", modes), modes
        screenshot(page, "admin-sync-settings")
        pages["sync-settings"] = sync_settings
        too_wide = {name: found for name, url in pages.items() if (found := fits(page, url))}
        assert too_wide == {}, pprint.pformat(too_wide)
        page.goto(admin)
        screenshot(page, "admin-dashboard")
        page.goto(admin + "webhooks/webhookevent/")
        screenshot(page, "admin-webhook-ledger")
