"""A consent text version is published where the catalogue changes (the product service, the
product and data type admin pages, and once by migration for products made before), so that the
consent pages only read."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from consent import selectors, services
from consent.models import ConsentText
from products.models import DataType
from products.services import product_define
from tests.factories import ProductFactory, StaffFactory

pytestmark = pytest.mark.django_db


def define(**changes):
    definition = {
        "identifier": "bank-feeds",
        "name": "Bank feeds",
        "kind": "custom",
        "description": "To keep your books reconciled with your accounts.",
        "data_types": ["bankAccounts"],
        **changes,
    }
    return product_define(**definition)


def versions(product):
    return list(
        ConsentText.objects.filter(product=product)
        .order_by("version")
        .values_list("version", flat=True)
    )


def shown_data_types(product):
    text = selectors.consent_text_current(product=product)
    return [item["identifier"] for item in text.content["data_types"]]


class TestTheProductService:
    def test_a_new_product_gets_its_first_text(self):
        product = define()
        text = selectors.consent_text_current(product=product)
        assert (text.version, text.purpose) == (1, product.description)
        assert shown_data_types(product) == ["bankAccounts"]

    def test_the_same_definition_again_publishes_nothing(self):
        product = define()
        define()
        assert versions(product) == [1]

    def test_a_new_name_or_new_data_types_publish_the_next_version(self):
        product = define()
        define(name="Bank feeds for your books")
        text = selectors.consent_text_current(product=product)
        assert (text.version, text.content["use_case"]["name"]) == (2, "Bank feeds for your books")
        define(name="Bank feeds for your books", data_types=["bankAccounts", "bankTransactions"])
        assert versions(product) == [1, 2, 3]
        assert shown_data_types(product) == ["bankAccounts", "bankTransactions"]


class TestTheAdmin:
    @pytest.fixture
    def admin_client(self, client):
        client.force_login(StaffFactory(role="admin"))
        return client

    def test_a_product_added_with_its_data_types_gets_a_text_showing_them(self, admin_client):
        response = admin_client.post(
            reverse("admin:products_product_add"),
            {
                "identifier": "cash-flow",
                "name": "Cash flow",
                "kind": "custom",
                "description": "To offer an overdraft when you need one.",
                "schedule_kind": "none",
                "product_data_types-TOTAL_FORMS": "2",
                "product_data_types-INITIAL_FORMS": "0",
                "product_data_types-0-data_type": "bankAccounts",
                "product_data_types-1-data_type": "payments",
                "product_data_types-1-is_optional": "on",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        product = ConsentText.objects.get().product
        assert product.identifier == "cash-flow"
        text = selectors.consent_text_current(product=product)
        assert [(item["identifier"], item["optional"]) for item in text.content["data_types"]] == [
            ("bankAccounts", False),
            ("payments", True),
        ]
        assert text.created_by is not None

    def test_a_reworded_data_type_publishes_the_text_of_every_product_reading_it(
        self, admin_client
    ):
        reading = define(data_types=["bankAccounts"])
        other = define(identifier="expenses", name="Expenses", data_types=["bills"])
        bank_accounts = DataType.objects.get(pk="bankAccounts")
        response = admin_client.post(
            reverse("admin:products_datatype_change", args=["bankAccounts"]),
            {"name": bank_accounts.name, "description": "The accounts you hold with your bank."},
        )
        assert response.status_code == 302
        assert versions(reading) == [1, 2]
        assert versions(other) == [1]
        text = selectors.consent_text_current(product=reading)
        assert text.content["data_types"][0]["description"] == (
            "The accounts you hold with your bank."
        )


def test_the_migration_gives_each_product_without_a_text_the_version_the_service_would():
    migration = importlib.import_module("consent.migrations.0003_publish_missing_texts")
    without_text = ProductFactory(description="To lend to you.", data_types=["invoices"])
    with_text = define()
    migration.publish_missing_texts(apps, None)
    assert versions(without_text) == [1] and versions(with_text) == [1]
    first = selectors.consent_text_current(product=without_text)
    # The service finds nothing changed: the migration built the very document it builds.
    assert services.consent_text_publish(product=without_text) == first
    assert first.purpose == "To lend to you."
