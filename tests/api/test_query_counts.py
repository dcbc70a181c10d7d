"""Every list endpoint issues the same number of queries at 20 rows as at 2,000.

The rows are inserted set-based (bulk_create), 20 first, then 1,980 more, and each list is read
at its largest page (200) both times, with its filters on where it has them.
"""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction, SourceAccount
from companies.models import Company, Connection, DataTypeStatus
from consent.models import ConsentEvent, ConsentRequest
from consent.services import current_consent_refold
from operations.models import Job, Operation
from products.models import CompanyProduct, ProductDataType
from tests.api.conftest import call
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def add_rows(world, start: int, stop: int) -> None:
    now = timezone.now()
    numbers = range(start, stop)
    companies = Company.objects.bulk_create(
        Company(codat_id=uuid.uuid4(), name=f"Bulk {n}", redirect="https://link.example/")
        for n in numbers
    )
    Connection.objects.bulk_create(
        Connection(
            codat_id=uuid.uuid4(),
            company=company,
            platform_name="Xero",
            source_type="Accounting",
            status="Linked",
            link_url="https://link.example/",
        )
        for company in companies
    )
    CompanyProduct.objects.bulk_create(
        CompanyProduct(company=company, product=world.product, status_changed_at=now)
        for company in companies
    )
    DataTypeStatus.objects.bulk_create(
        DataTypeStatus(company=company, data_type_id="invoices", current_status="Complete")
        for company in companies
    )
    jobs = Job.objects.bulk_create(
        Job(kind="add_product", product=world.product, description=f"Job {n}") for n in numbers
    )
    Operation.objects.bulk_create(
        Operation(
            kind="add_product",
            company=company,
            product=world.product,
            job=job,
            state="failed",
            next_attempt_at=now,
            dedupe_key=f"bulk:{company.pk}",
            last_error="Boom",
        )
        for company, job in zip(companies, jobs, strict=True)
    )
    WebhookEvent.objects.bulk_create(
        WebhookEvent(webhook_id=f"msg_bulk_{n}", event_type="company.created", body="{}")
        for n in numbers
    )
    grant = ConsentEvent.objects.filter(company=world.company).first()
    ConsentEvent.objects.bulk_create(
        ConsentEvent(
            company=world.company,
            product=world.product,
            action="grant",
            data_types=["invoices"],
            text=grant.text,
            text_hash=grant.text_hash,
            channel="link",
            token_hash=grant.token_hash,
        )
        for _ in numbers
    )
    current_consent_refold(company_ids=[world.company.pk])
    requests = ConsentRequest.objects.bulk_create(
        ConsentRequest(
            token_hash=uuid.uuid4().hex * 2,
            company=world.company,
            created_at=now,
            expires_at=now + timezone.timedelta(days=1),
        )
        for _ in numbers
    )
    ConsentRequest.products.through.objects.bulk_create(
        ConsentRequest.products.through(consentrequest=request, product=world.product)
        for request in requests
    )
    ProductDataType.objects.filter(product=world.product).exists()
    account = world.bank_account
    SourceAccount.objects.bulk_create(
        SourceAccount(
            connection=account.connection,
            account_id=f"acc-bulk-{n}",
            account_name=f"Bulk {n}",
            account_type="savings",
            account_number=str(n),
            currency="GBP",
            balance=0,
            state="active",
        )
        for n in numbers
    )
    BankTransaction.objects.bulk_create(
        BankTransaction(
            account=account,
            transaction_id=f"tx-bulk-{n}",
            date=now,
            amount=-1,
            content_hash="2" * 64,
        )
        for n in numbers
    )
    BankFeedPush.objects.bulk_create(
        BankFeedPush(
            account=account, status="success", transaction_count=1, first_date=now, last_date=now
        )
        for _ in numbers
    )


LISTS = [
    "/api/v1/companies/?page_size=200",
    "/api/v1/companies/?page_size=200&connection_status=Linked&product=cash-flow"
    "&product_status=pending_add&data_type=invoices&data_type_status=Complete",
    "/api/v1/operations/?page_size=200&state=failed&kind=add_product",
    "/api/v1/jobs/?page_size=200",
    "/api/v1/webhook-events/?page_size=200&event_type=company.created",
    "/api/v1/products/?page_size=200",
    "/api/v1/companies/{company}/consent/events/?page_size=200",
    "/api/v1/companies/{company}/consent/requests/?page_size=200",
    "/api/v1/companies/{company}/bank-feed-accounts/?page_size=200",
    "/api/v1/companies/{company}/bank-feed-accounts/acc-current/transactions/?page_size=200"
    "&state=waiting",
    "/api/v1/companies/{company}/bank-feed-accounts/acc-current/pushes/?page_size=200",
]


def queries_of(url: str, key: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = call("GET", url, key)
    assert response.status_code == 200, response.content
    return len(captured), len(response.json()["results"])


def test_list_endpoints_cost_the_same_queries_at_20_and_2000_rows(keys, world):
    urls = [url.format(company=world.company.codat_id) for url in LISTS]
    add_rows(world, 0, 20)
    small = {url: queries_of(url, keys["all"]) for url in urls}
    add_rows(world, 20, 2000)
    large = {url: queries_of(url, keys["all"]) for url in urls}
    for url in urls:
        assert large[url][0] == small[url][0], url
        # The larger table really fills the page: the comparison is not 20 rows against 20.
        assert large[url][1] > small[url][1] or url.startswith("/api/v1/products/"), url
