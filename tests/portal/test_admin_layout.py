"""Admin pages fit a 1440 px screen: no horizontal scrollbar, no column cut off.

Real Chromium (Playwright), logged in as staff, on data as wide as production's: a company with
40 data types and long names, ledger events with long types and ids, operations with long errors.
Skipped without /usr/bin/chromium outside CI, like tests/consent/test_browser.py.
"""

import pprint
import uuid

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from codat.data_types import ALL_DATA_TYPES
from core.roles import create_roles
from operations.models import OperationKind, OperationState
from tests.consent.test_browser import CHROMIUM, playwright_or_skip
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    DataTypeStatusFactory,
    OperationFactory,
    ProductFactory,
    StaffFactory,
)
from tests.operations.helpers import ensure_data_types
from webhooks.consumers import webhook_consumer_register
from webhooks.models import EventState, WebhookEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREEN = {"width": 1440, "height": 900}
LONG_NAME = "Northwind Commercial Lending and Asset Finance Holdings (Europe) plc"

# Elements whose right edge passes the viewport, or whose content is wider than their box
# (a table scrolled inside a `.results` wrapper hides its last columns without widening the page);
# not Django's `.visually-hidden` text, which is clipped for screen readers on purpose.
OVERFLOW_SCRIPT = """
() => {
  const width = window.innerWidth;
  const found = [];
  for (const el of document.querySelectorAll('#content, #content *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    // Django's screen-reader-only headings are clipped to 1 px on purpose.
    if (el.closest('.visually-hidden')) continue;
    const scrolls = getComputedStyle(el).overflowX;
    if (box.right > width + 1 || (scrolls !== 'visible' && el.scrollWidth > el.clientWidth + 1)) {
      found.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
                 `.${[...el.classList].join('.')} right=${Math.round(box.right)}`);
    }
  }
  return {
    pageWidth: document.documentElement.scrollWidth,
    viewport: width,
    wide: found.slice(0, 10),
  };
}
"""


@pytest.fixture
def staff_page(monkeypatch, live_server):
    """A 1440 x 900 Chromium page carrying a logged-in staff member's session cookie."""
    sync_playwright = playwright_or_skip()
    # The ORM runs beside Playwright's event loop in this thread (see tests/consent/test_browser).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # An earlier transactional test may have truncated the groups the roles migration made.
    create_roles()
    client = Client()
    client.force_login(StaffFactory(role="operator"))
    session = client.cookies["sessionid"].value
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = chromium.new_context(viewport=SCREEN, locale="en-GB")
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        yield context.new_page()
        chromium.close()
        connections.close_all()


def wide_company():
    """A company with five products that between them need 40 data types, some consented."""
    company = CompanyFactory(name=LONG_NAME)
    data_types = ALL_DATA_TYPES[:40]
    ensure_data_types(data_types)
    products = [
        ProductFactory(
            name=f"{label} (custom, for the {LONG_NAME[:9]} group)",
            data_types=data_types[index * 8 : index * 8 + 16],
        )
        for index, label in enumerate(
            ("Lending", "Bank feeds", "Expense management", "Commerce insights", "Audit trail")
        )
    ]
    for product in products:
        CompanyProductFactory(company=company, product=product)
    ConsentEventFactory(company=company, product=products[0])
    ConnectionFactory(company=company, platform_name="Sage Business Cloud Accounting")
    for identifier in data_types[:10]:
        DataTypeStatusFactory(company=company, data_type_id=identifier)
    return company, products


# Codat's longer event types, and one this portal has never heard of.
EVENT_TYPES = (
    "bankFeeds.sourceAccount.connected",
    "bankFeeds.sourceAccount.disconnected",
    "company.dataConnectionStatus.changed",
    "readCompleted.commerceTransactions.withErrors.v2",
)


def long_ledger(company):
    now = timezone.now()
    for index in range(30):
        WebhookEvent.objects.create(
            webhook_id=f"msg_{uuid.uuid4().hex}{uuid.uuid4().hex}{index}",
            event_id=uuid.uuid4().hex,
            event_type=EVENT_TYPES[index % len(EVENT_TYPES)],
            state=EventState.QUARANTINED if index % 2 else EventState.MISSED,
            state_reason="The body was not JSON: " + "x" * 200,
            company=company,
            company_codat_id=company.codat_id,
            generated_at=now,
            received_at=now,
        )


def long_operations(company, products):
    # A consumer operation acts on a URL: one long word with no space to wrap at.
    webhook_consumer_register(
        url="https://integrations.northwind-lending.example/codat/webhooks/production/eu-west-1/"
        "receiver?tenant=northwind-commercial-lending",
        event_types=list(EVENT_TYPES),
    )
    error = (
        "Codat answered 400 Bad Request: The data type 'commerce-transactions' is not supported "
        "by the integration 'gbol' for this company; see https://docs.codat.io/integrations/"
        "accounting/overview/supported-data-types?integration=gbol&dataType=commerce-transactions"
        "&companyId=8a210b68-6988-11ed-a1eb-0242ac120002&connectionId=51baa045-4836-4317-a42e-"
        "3542e991e581 correlation id "
    )
    for index in range(30):
        OperationFactory(
            kind=OperationKind.REFRESH_PRODUCT if index % 2 else OperationKind.ADD_PRODUCT,
            company=company,
            product=products[index % len(products)],
            state=OperationState.FAILED,
            attempts=7,
            last_error=error + str(uuid.uuid4()),
        )


def overflow_at(page, url, name) -> dict | None:
    """What overflows the screen on the page at `url`; None when everything fits."""
    response = page.goto(url)
    assert response.status == 200, (name, response.status)
    page.screenshot(path=f"/tmp/admin-layout-{name}.png", full_page=True)
    measured = page.evaluate(OVERFLOW_SCRIPT)
    if measured["pageWidth"] <= measured["viewport"] and not measured["wide"]:
        return None
    return measured


def test_consent_matrix_ledger_and_operations_fit_a_1440_pixel_screen(staff_page, live_server):
    # given: a company as wide as production's, with its ledger and operations
    company, products = wide_company()
    long_ledger(company)
    long_operations(company, products)

    # when/then: each page fits the screen
    base = live_server.url
    pages = {
        "consent-matrix": reverse("admin:consent_companyconsent_change", args=[company.pk]),
        "webhook-events": reverse("admin:webhooks_webhookevent_changelist"),
        "operations": reverse("admin:operations_operation_changelist"),
        "companies": reverse("admin:companies_company_changelist"),
        "company": reverse("admin:companies_company_change", args=[company.pk]),
    }
    overflowing = {name: overflow_at(staff_page, base + path, name) for name, path in pages.items()}
    too_wide = {name: found for name, found in overflowing.items() if found}
    assert too_wide == {}, pprint.pformat(too_wide)


def test_the_dashboard_fits_a_1440_pixel_screen(staff_page, live_server):
    # given: a book like the demo's, with long product names and failure messages
    from core.redis_connection import redis_client
    from operations import limiter
    from tests.portal.dashboard_book import book_products, grow_book, lag_history

    products = book_products()
    Product = type(products["Lending"])
    Product.objects.filter(pk=products["Lending"].pk).update(
        name=f"Lending (custom, for the {LONG_NAME} group)"
    )
    grow_book(products, units=3)
    lag_history()
    redis_client().set(limiter._day_key(), 1870)

    # when/then: the admin home fits, and a screenshot is left for people to look at
    found = overflow_at(staff_page, live_server.url + reverse("admin:index"), "dashboard")
    assert found is None, pprint.pformat(found)
    assert staff_page.locator("#dashboard .dash-card").count() == 7
