"""Fixtures for the API tests: keys of each scope (and refused ones), and a small world of one
company with a consented, active custom product, a job with a failed row and a webhook event."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from bankfeeds.models import BankFeedConnection, BankFeedPush, BankTransaction, SourceAccount
from codat.data_types import ALL_DATA_TYPES
from core.roles import API_SCOPES
from products.models import CompanyProduct
from products.services import product_define
from tests.factories import (
    CompanyFactory,
    ConnectionFactory,
    ConsentEventFactory,
    JobFactory,
    OperationFactory,
)
from tests.operations.helpers import ensure_data_types
from webhooks.models import WebhookEvent


@pytest.fixture(autouse=True)
def api_settings(settings):
    settings.API_RATE_LIMIT = "100000/m"
    settings.CONSENT_RECONFIRM_AFTER_DAYS = None


def make_key(scopes, *, name="test") -> str:
    return api_key_create(name=name, scopes=scopes)[1]


@pytest.fixture
def keys(db) -> dict[str, str | None]:
    """Raw keys by principal: one per scope, all scopes, none, a revoked and an expired key."""
    found: dict[str, str | None] = {scope: make_key([scope], name=scope) for scope in API_SCOPES}
    found["all"] = make_key(list(API_SCOPES), name="all")
    found["none"] = None
    revoked_raw = make_key(list(API_SCOPES), name="revoked")
    api_key_revoke(key=ApiKey.objects.get(name="revoked"))
    found["revoked"] = revoked_raw
    found["expired"] = make_key(list(API_SCOPES), name="expired")
    ApiKey.objects.filter(name="expired").update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(days=1)
    )
    return found


def call(method: str, url: str, key: str | None = None, body=None, **headers):
    client = Client()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    kwargs = {"headers": headers}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method.lower())(url, **kwargs)


@dataclass
class World:
    company: object
    product: object
    other_product: object
    job: object
    operation: object
    receipt_id: str
    event: object
    bank_account: object
    # A company read at client level (no custom product): client-level refreshes fit it only.
    client_level_company: object = None


@pytest.fixture
def world(db) -> World:
    # Transactional tests empty the catalogue of data types the migrations seeded.
    ensure_data_types(ALL_DATA_TYPES)
    product = product_define(
        identifier="cash-flow",
        name="Cash flow",
        kind="custom",
        data_types=["invoices", "bills"],
    )
    other = product_define(
        identifier="expenses", name="Expenses", kind="custom", data_types=["bankAccounts"]
    )
    company = CompanyFactory(name="Acme Bakery Ltd")
    ConnectionFactory(company=company)
    CompanyProduct.objects.create(
        company=company, product=product, status="active", status_changed_at=timezone.now()
    )
    grant = ConsentEventFactory(company=company, product=product)
    job = JobFactory(product=product)
    operation = OperationFactory(
        company=company, product=product, job=job, state="failed", last_error="Boom"
    )
    event = WebhookEvent.objects.create(
        webhook_id="msg_test_1", event_type="company.created", body="{}", state="applied"
    )
    bank_account = bank_feed_account(company)
    client_level_company = CompanyFactory(name="Client Level Ltd")
    ConnectionFactory(company=client_level_company)
    ConsentEventFactory(company=client_level_company, product=product)
    return World(
        client_level_company=client_level_company,
        company=company,
        product=product,
        other_product=other,
        job=job,
        operation=operation,
        receipt_id=str(grant.receipt_id),
        event=event,
        bank_account=bank_account,
    )


def bank_feed_account(company):
    """A mapped QuickBooks Online source account of the company with one synced push."""
    connection = BankFeedConnection.objects.create(
        company=company, platform="hcws", state="created", codat_id=uuid.uuid4()
    )
    account = SourceAccount.objects.create(
        connection=connection,
        account_id="acc-current",
        account_name="Business Current",
        account_type="checking",
        account_number="12345678",
        sort_code="040004",
        currency="GBP",
        balance=0,
        state="active",
        mapping_status="connected",
        target_account_name="Bank (GBP)",
        feed_start_date=timezone.now() - timedelta(days=3),
    )
    date = timezone.now() - timedelta(days=1)
    push = BankFeedPush.objects.create(
        account=account,
        status="success",
        push_operation_key=uuid.uuid4(),
        transaction_count=1,
        first_date=date,
        last_date=date,
        sent_at=timezone.now(),
        completed_at=timezone.now(),
    )
    BankTransaction.objects.create(
        account=account,
        transaction_id="tx-synced",
        date=date,
        amount=-12.5,
        transaction_type="Debit",
        content_hash="0" * 64,
        state="synced",
        push=push,
    )
    return account
