"""Uniqueness and value rules live in the database, so no code path can break them."""

from datetime import time

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from products.models import CompanyProduct, DataType, Product, ProductDataType
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    DataTypeStatusFactory,
    ProductFactory,
    PullOperationFactory,
)

pytestmark = pytest.mark.django_db


def assert_rejected(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_the_catalogue_holds_all_43_codat_data_types_grouped_in_three():
    assert DataType.objects.count() == 43
    assert set(DataType.objects.values_list("category", flat=True)) == {
        "accounting",
        "banking",
        "commerce",
    }
    assert DataType.objects.filter(category="banking").count() == 4
    assert DataType.objects.filter(category="commerce").count() == 11
    assert not DataType.objects.filter(description="").exists()


def test_a_data_type_codat_does_not_have_is_rejected():
    assert_rejected(
        lambda: DataType.objects.create(
            identifier="spreadsheets", name="x", category="accounting", description="x"
        )
    )


def test_a_company_codat_id_is_unique():
    company = CompanyFactory()
    assert_rejected(lambda: CompanyFactory(codat_id=company.codat_id))


def test_a_company_needs_a_name():
    assert_rejected(lambda: CompanyFactory(name=""))


@pytest.mark.parametrize("field, value", [("status", "Connected"), ("source_type", "Ledger")])
def test_a_connection_takes_only_codat_values(field, value):
    assert_rejected(lambda: ConnectionFactory(**{field: value}))


def test_a_connection_codat_id_is_unique():
    connection = ConnectionFactory()
    assert_rejected(lambda: ConnectionFactory(codat_id=connection.codat_id))


def test_each_of_codats_four_connection_statuses_is_accepted():
    for status in ("PendingAuth", "Linked", "Unlinked", "Deauthorized"):
        ConnectionFactory(status=status)
    assert Connection.objects.count() == 4


def test_one_status_row_per_company_and_data_type():
    status = DataTypeStatusFactory()
    assert_rejected(lambda: DataTypeStatusFactory(company=status.company))


def test_a_data_type_status_takes_only_codats_21_values_or_none_yet():
    DataTypeStatusFactory(current_status="")
    DataTypeStatusFactory(current_status="PrerequisiteNotMet", data_type_id="bills")
    assert_rejected(lambda: DataTypeStatusFactory(current_status="Done", data_type_id="items"))
    assert DataTypeStatus.objects.count() == 2


def test_a_pull_operation_progress_is_a_percentage():
    assert_rejected(lambda: PullOperationFactory(progress=101))


def test_a_pull_operation_status_is_one_of_codats():
    assert_rejected(lambda: PullOperationFactory(status="Finished"))
    assert not PullOperation.objects.exists()


def test_a_daily_product_needs_a_time_and_an_hourly_one_has_none():
    assert_rejected(lambda: ProductFactory(schedule_kind="daily", schedule_time=None))
    assert_rejected(lambda: ProductFactory(schedule_kind="hourly", schedule_time=time(23)))
    product = ProductFactory(schedule_kind="daily", schedule_time=time(23))
    assert product.schedule_display == "daily at 23:00 UTC"


def test_a_product_identifier_is_unique_and_kind_is_standard_or_custom():
    ProductFactory(identifier="lending")
    assert_rejected(lambda: ProductFactory(identifier="lending"))
    assert_rejected(lambda: ProductFactory(kind="bespoke"))


def test_a_product_lists_a_data_type_once():
    product = ProductFactory(data_types=["payments"])
    assert_rejected(
        lambda: ProductDataType.objects.create(product=product, data_type_id="payments")
    )


def test_a_company_holds_a_product_once_with_a_known_status():
    assignment = CompanyProductFactory()
    assert_rejected(
        lambda: CompanyProductFactory(company=assignment.company, product=assignment.product)
    )
    assert_rejected(lambda: CompanyProductFactory(status="maybe"))
    assert CompanyProduct.objects.count() == 1


def test_deleting_a_company_deletes_its_mirror_rows():
    connection = ConnectionFactory()
    DataTypeStatusFactory(company=connection.company)
    PullOperationFactory(company=connection.company, connection=connection)
    connection.company.delete()
    assert not Connection.objects.exists()
    assert not DataTypeStatus.objects.exists()
    assert not PullOperation.objects.exists()
    assert not Company.objects.exists()


def test_a_product_held_by_a_company_cannot_be_deleted():
    assignment = CompanyProductFactory()
    with pytest.raises(ProtectedError):
        assignment.product.delete()
    assert Product.objects.filter(pk=assignment.product.pk).exists()
