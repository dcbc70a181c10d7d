"""A book of companies whose dashboard figures are known in advance, at any size.

`grow_book(products, units=n)` adds n units of four companies; every figure of the dashboard is
a multiple of the units added (see EXPECTED_PER_UNIT), so a test can grow the book and compare
query counts, and the browser test and the screenshot get demo-like data from the same place.

One unit:
  A  Linked;               Lending (invoices failing: FetchError "Platform under maintenance";
                           stale), Bank feeds (stale), consent: Lending granted, Bank feeds
                           withdrawn
  B  Linked + Deauthorized; Lending (bills AuthError "Token expired"; fresh), Bank feeds (fresh),
                           consent: Lending asked, Bank feeds missing
  C  PendingAuth;           Lending (stale), consent missing
  D  no connection;         Expenses (no schedule; its read failed with MapError), consent missing
"""

import uuid
from datetime import time, timedelta

from django.utils import timezone

from companies.models import ProductReadStatus
from consent.models import ConsentRequest
from operations.models import OperationState
from products.models import Product
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    DataTypeStatusFactory,
    JobFactory,
    OperationFactory,
    ProductFactory,
)
from tests.operations.helpers import ensure_data_types
from webhooks.models import EventState, WebhookEvent

MAINTENANCE = "The platform is under maintenance; Codat will try again later."
TOKEN_EXPIRED = "The access token has expired: the customer must connect again."

EXPECTED_PER_UNIT = {
    "companies": 4,
    "connections": {"Linked": 2, "PendingAuth": 1, "Deauthorized": 1, "": 1},
    "failing": {"FetchError": 2, "AuthError": 1},
    "reasons": {
        ("FetchError", MAINTENANCE): 1,
        ("AuthError", TOKEN_EXPIRED): 1,
        ("FetchError", ""): 1,
    },
    # product: (scheduled, stale, failing)
    "freshness": {"Lending": (6, 4, 1), "Bank feeds": (2, 1, 0), "Expenses": (0, 0, 1)},
    "queued_before_midnight": 2,
    "jobs_in_flight": 1,
    "quarantined": 1,
    "received": 1,
    "applied_in_window": 3,
    # product: (granted, asked, withdrawn, missing)
    "consent": {"Lending": (1, 1, 0, 1), "Bank feeds": (0, 0, 1, 1), "Expenses": (0, 0, 0, 1)},
}
# Receipt to applied of the three applied events of each unit, in seconds.
LAGS = (1, 2, 30)


def book_products() -> dict[str, Product]:
    ensure_data_types(["invoices", "bills", "bankAccounts", "suppliers"])
    products = {
        "Lending": ("lending", ["invoices", "bills"], "daily", time(6, 0)),
        "Bank feeds": ("bank-feeds", ["bankAccounts"], "hourly", None),
        "Expenses": ("expenses", ["suppliers"], "none", None),
    }
    made = {}
    for name, (identifier, data_types, schedule, at) in products.items():
        product = Product.objects.filter(identifier=identifier).first()
        if product is None:
            product = ProductFactory(
                identifier=identifier,
                name=name,
                data_types=data_types,
                schedule_kind=schedule,
                schedule_time=at,
            )
        made[name] = product
    return made


def _reads(company, product, **fields):
    ProductReadStatus.objects.filter(assignment__company=company, product=product).update(**fields)


def grow_book(products: dict[str, Product], *, units: int = 1, now=None) -> None:
    now = now or timezone.now()
    lending, feeds, expenses = products["Lending"], products["Bank feeds"], products["Expenses"]
    job = JobFactory(product=lending, description=f"Add Lending to {4 * units} companies")
    for _ in range(units):
        a, b, c, d = (CompanyFactory() for _ in range(4))
        ConnectionFactory(company=a, status="Linked")
        ConnectionFactory(company=b, status="Linked")
        ConnectionFactory(company=b, status="Deauthorized", platform_name="QuickBooks Online")
        ConnectionFactory(company=c, status="PendingAuth", platform_name="Sage")

        DataTypeStatusFactory(
            company=a,
            data_type_id="invoices",
            current_status="FetchError",
            last_read_issues=[{"type": "Error", "message": MAINTENANCE}],
        )
        DataTypeStatusFactory(company=a, data_type_id="bills", current_status="FetchError")
        DataTypeStatusFactory(
            company=b,
            data_type_id="bills",
            current_status="AuthError",
            last_read_issues=[{"type": "Error", "message": TOKEN_EXPIRED}],
        )
        DataTypeStatusFactory(company=c, data_type_id="invoices", current_status="Complete")

        for company in (a, b, c):
            CompanyProductFactory(company=company, product=lending)
        for company in (a, b):
            CompanyProductFactory(company=company, product=feeds)
        CompanyProductFactory(company=d, product=expenses)
        _reads(a, lending, due_from=now - timedelta(days=3))
        _reads(c, lending, due_from=now - timedelta(days=3))
        _reads(b, lending, due_from=now)
        ProductReadStatus.objects.filter(
            assignment__company=a, product=lending, data_type_id="invoices"
        ).update(last_status="FetchError")
        _reads(a, feeds, due_from=now - timedelta(hours=5))
        _reads(b, feeds, due_from=now)
        _reads(d, expenses, last_status="MapError")

        # The job: one operation finished each way, one waiting, one running.
        for company, state in (
            (a, OperationState.SUCCEEDED),
            (b, OperationState.FAILED),
            (c, OperationState.PENDING),
            (d, OperationState.RUNNING),
        ):
            OperationFactory(
                company=company, product=lending, job=job, state=state, next_attempt_at=now
            )
        # Waiting past midnight (a long back-off): not part of today's forecast.
        OperationFactory(company=a, product=feeds, next_attempt_at=now + timedelta(days=2))

        for lag in LAGS:
            _event(now - timedelta(minutes=30), lag=lag, state=EventState.APPLIED)
        _event(now - timedelta(days=3), lag=5, state=EventState.APPLIED)
        _event(now - timedelta(minutes=5), lag=None, state=EventState.QUARANTINED)
        _event(now - timedelta(minutes=1), lag=None, state=EventState.RECEIVED)

        ConsentEventFactory(company=a, product=lending, occurred_at=now - timedelta(days=4))
        ConsentEventFactory(company=a, product=feeds, occurred_at=now - timedelta(days=4))
        ConsentEventFactory(
            company=a, product=feeds, action="withdraw", occurred_at=now - timedelta(days=1)
        )
        request = ConsentRequest.objects.create(
            token_hash=uuid.uuid4().hex * 2,
            company=b,
            created_at=now - timedelta(hours=2),
            expires_at=now + timedelta(days=7),
        )
        request.products.add(lending)
    # A job whose every operation has finished is not in flight.
    done = JobFactory(product=feeds, description="Refresh Bank feeds")
    OperationFactory(company=a, product=feeds, job=done, state=OperationState.SUCCEEDED)


def _event(received_at, *, lag, state):
    event = WebhookEvent.objects.create(
        webhook_id=f"msg_{uuid.uuid4().hex}",
        event_type="read.completed",
        state=state,
    )
    # received_at is auto_now_add: set afterwards, as the ledger would have recorded it.
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=received_at,
        processed_at=received_at + timedelta(seconds=lag) if lag is not None else None,
    )


def lag_history(*, hours: int = 24, now=None) -> None:
    """Applied events over the last `hours`, a few an hour, slower in the busy afternoon: a
    sparkline with a shape, for the screenshot."""
    now = now or timezone.now()
    for hour in range(hours):
        received = now - timedelta(hours=hour, minutes=20)
        busy = 12 <= received.hour <= 17
        for index in range(3):
            _event(
                received + timedelta(minutes=index),
                lag=(8 if busy else 1.5) + index * (4 if busy else 0.5) + hour % 3,
                state=EventState.APPLIED,
            )
