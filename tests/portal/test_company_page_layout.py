"""The company page of a company with a long, demo-like history fits a 1440 px screen in real
Chromium, with its summary header at the top of the first screen.

Reuses the logged-in 1440 x 900 page and the overflow check of tests/portal/test_admin_layout.py.
The full-page screenshots are left at /tmp/admin-layout-company-page.png (as it opens) and
/tmp/admin-layout-company-page-unfolded.png (every fold open) for a look.
"""

import datetime
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from codat.data_types import ALL_DATA_TYPES
from companies.models import ProductReadStatus
from operations.models import Operation, OperationKind, OperationState
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    DataTypeStatusFactory,
    OperationFactory,
    ProductFactory,
    PullOperationFactory,
)
from tests.operations.helpers import ensure_data_types
from tests.portal.test_admin_layout import (  # noqa: F401 (staff_page is a fixture)
    LONG_NAME,
    OVERFLOW_SCRIPT,
    overflow_at,
    staff_page,
)
from webhooks.models import EventState, WebhookEvent

# Beside test_admin_layout.py, and like it transactional (the live server reads committed rows):
# pytest-django runs such tests after the others, in file order, and each empties the tables, the
# migrated catalogue too; tests/consent/test_browser.py, which runs before this, needs it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LENDING = [
    "company",
    "chartOfAccounts",
    "balanceSheet",
    "profitAndLoss",
    "invoices",
    "bills",
    "customers",
    "suppliers",
    "banking-accounts",
    "banking-accountBalances",
    "banking-transactions",
]
EVENT_TYPES = (
    "lending.read.completed",
    "bankFeeds.sourceAccount.connected",
    "company.dataConnectionStatus.changed",
    "readCompleted.commerceTransactions.withErrors.v2",
)
ERROR = (
    "Codat answered 400 Bad Request: The data type 'commerce-transactions' is not supported by "
    "the integration 'gbol' for this company; see https://docs.codat.io/integrations/accounting/"
    "overview/supported-data-types?integration=gbol&dataType=commerce-transactions correlation "
)


def demo_like_company():
    """A company as the demo's busiest ones look: three products in every state of freshness
    and consent, most data types never read, and a long history of all three kinds."""
    ensure_data_types(ALL_DATA_TYPES)
    now = timezone.now()
    company = CompanyFactory(name=LONG_NAME)
    ConnectionFactory(company=company, platform_name="Sage Business Cloud Accounting")
    ConnectionFactory(company=company, platform_name="Xero", status="Deauthorized")
    lending = ProductFactory(
        name="Lending",
        kind="standard",
        schedule_kind="daily",
        schedule_time=datetime.time(6, 0),
        data_types=LENDING,
    )
    bank_feeds = ProductFactory(name="Bank Feeds", kind="standard", data_types=["bankAccounts"])
    cash_flow = ProductFactory(
        name="Cash-flow forecasting (custom, for the treasury team)",
        schedule_kind="hourly",
        data_types=["invoices", "bills", "banking-transactions", "taxRates"],
    )
    assignments = [
        CompanyProductFactory(company=company, product=product)
        for product in (lending, bank_feeds, cash_flow)
    ]
    ConsentEventFactory(company=company, product=lending)
    ConsentEventFactory(company=company, product=cash_flow, occurred_at=now)
    reads = ProductReadStatus.objects.filter(assignment__in=assignments)
    reads.filter(product=lending).update(
        last_status="Complete", last_read_at=now, last_successful_read=now, due_from=now
    )
    reads.filter(product=lending, data_type__in=["bills", "suppliers"]).update(
        last_status="FetchError"
    )
    reads.filter(product=lending, data_type="banking-transactions").update(last_status="")
    hours_ago = now - datetime.timedelta(hours=6)
    reads.filter(product=cash_flow).update(
        last_status="Complete", last_successful_read=hours_ago, due_from=hours_ago
    )
    for identifier in ALL_DATA_TYPES:
        synced = identifier in LENDING[:6]
        DataTypeStatusFactory(
            company=company,
            data_type_id=identifier,
            current_status="Complete" if synced else "",
            last_successful_sync=now if synced else None,
        )
    for index in range(60):
        operation = OperationFactory(
            kind=OperationKind.REFRESH_PRODUCT if index % 2 else OperationKind.ADD_PRODUCT,
            company=company,
            product=cash_flow if index % 2 else lending,
            state=OperationState.FAILED if index % 3 == 0 else OperationState.SUCCEEDED,
            attempts=1 + index % 4,
            last_error=ERROR + str(uuid.uuid4()) if index % 3 == 0 else "",
        )
        Operation.objects.filter(pk=operation.pk).update(
            created_at=now - datetime.timedelta(minutes=7 * index)
        )
    for index in range(40):
        event = WebhookEvent.objects.create(
            webhook_id=f"msg_{uuid.uuid4().hex}{uuid.uuid4().hex}",
            event_type=EVENT_TYPES[index % len(EVENT_TYPES)],
            state=EventState.QUARANTINED if index % 5 == 0 else EventState.APPLIED,
            state_reason="The body was not JSON: " + "x" * 200 if index % 5 == 0 else "",
            company=company,
            company_codat_id=company.codat_id,
            generated_at=now,
        )
        WebhookEvent.objects.filter(pk=event.pk).update(
            received_at=now - datetime.timedelta(minutes=5 * index + 2)
        )
    for _ in range(25):
        PullOperationFactory(company=company, data_type_id="invoices")
    return company


def test_the_company_page_of_a_long_history_fits_a_1440_pixel_screen(
    staff_page,  # noqa: F811 (the fixture imported above)
    live_server,
):
    company = demo_like_company()
    url = live_server.url + reverse("admin:companies_company_change", args=[company.pk])

    overflowing = overflow_at(staff_page, url, "company-page")

    assert overflowing is None
    # The summary opens the page: on the first screen, not below the fold.
    summary = staff_page.locator("#company-summary").bounding_box()
    assert summary is not None and summary["y"] < 300
    assert staff_page.locator("#company-timeline tbody tr").count() == 50
    # Unfolded (the never-read data types, the pulls, the company record), it still fits.
    staff_page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    unfolded = staff_page.evaluate(OVERFLOW_SCRIPT)
    assert unfolded["pageWidth"] <= unfolded["viewport"] and unfolded["wide"] == [], unfolded
    staff_page.screenshot(path="/tmp/admin-layout-company-page-unfolded.png", full_page=True)
