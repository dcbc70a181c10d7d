"""Fixtures for the consent tests: a company, a product with required and optional data types,
and a cache on the test Redis for the per-IP rate limit."""

import uuid

import pytest

from products.services import product_define
from tests.factories import CompanyFactory
from tests.operations.helpers import ensure_data_types


@pytest.fixture(autouse=True)
def consent_cache(settings, redis_url):
    """Django's cache on the session's Redis, under a key prefix of this test's own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"consent-test-{uuid.uuid4().hex}",
        }
    }
    settings.CONSENT_RATE_LIMIT = "1000/m"
    settings.CONSENT_CONTROLLER_NAME = "Northwind Lending plc"
    settings.CONSENT_CONTROLLER_CONTACT = "privacy@northwind.example"
    settings.CONSENT_RECONFIRM_AFTER_DAYS = None


@pytest.fixture
def company(db):
    return CompanyFactory(name="Acme Bakery Ltd")


@pytest.fixture
def product(db):
    """A use case with two required data types and one optional one, defined as the catalogue
    defines products (so its first consent text is published)."""
    # A transactional test run earlier may have flushed the catalogue the migration seeded.
    ensure_data_types(["invoices", "balanceSheet", "bankAccounts", "bills"])
    return product_define(
        identifier="lending",
        name="Lending",
        kind="custom",
        description="To decide on your loan application and monitor the loan while it runs.",
        data_types=["invoices", "balanceSheet", "bankAccounts"],
        optional_data_types=("bankAccounts",),
    )


@pytest.fixture
def other_product(db):
    ensure_data_types(["bills"])
    return product_define(
        identifier="expenses",
        name="Expenses",
        kind="custom",
        description="To reconcile your card spend with your books.",
        data_types=["bills"],
    )
