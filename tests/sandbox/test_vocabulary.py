"""The sandbox's own lists of Codat's enumerations match Codat's published documents.

The sandbox does not share these lists with the portal's client (design invariant 8), so each is
held to the OpenAPI documents here instead, in the documents' order.
"""

import pytest

from sandbox import vocabulary
from sandbox.catalogue import DATA_TYPES_BY_SOURCE_TYPE, INTEGRATIONS, STANDARD_PRODUCTS
from sandbox.control import FINAL_STATUSES
from sandbox.demo import COMPANIES, CUSTOM_PRODUCTS
from sandbox.settings import DATASET_STAGES, ERROR_DECIDED_AFTER
from tests.oas import BANK_FEEDS, PLATFORM, load_document


def schemas(document: str) -> dict:
    return load_document(document)["components"]["schemas"]


def test_data_types_are_the_documented_data_type_enum():
    platform = schemas(PLATFORM)["DataStatus"]["properties"]["dataType"]["enum"]
    bank_feeds = schemas(BANK_FEEDS)["DataType"]["enum"]
    assert vocabulary.DATA_TYPES == tuple(platform) == tuple(bank_feeds)


def test_every_data_type_falls_in_exactly_one_api():
    groups = (
        vocabulary.ACCOUNTING_DATA_TYPES,
        vocabulary.BANKING_DATA_TYPES,
        vocabulary.COMMERCE_DATA_TYPES,
    )
    assert sorted(t for group in groups for t in group) == sorted(vocabulary.DATA_TYPES)
    assert (len(vocabulary.BANKING_DATA_TYPES), len(vocabulary.COMMERCE_DATA_TYPES)) == (4, 11)


@pytest.mark.parametrize("document", [PLATFORM, BANK_FEEDS])
def test_dataset_statuses_are_the_documented_pull_operation_statuses(document):
    documented = schemas(document)["PullOperation"]["properties"]["status"]["enum"]
    assert tuple(documented) == vocabulary.DATASET_STATUSES


def test_the_sandboxs_dataset_stages_and_outcomes_are_documented_statuses():
    statuses = set(vocabulary.DATASET_STATUSES)
    assert set(DATASET_STAGES) <= statuses
    assert set(ERROR_DECIDED_AFTER) <= statuses
    assert set(FINAL_STATUSES) <= statuses
    assert set(ERROR_DECIDED_AFTER.values()) <= set(DATASET_STAGES)


def test_source_types_are_the_documented_source_type_enum():
    platform = schemas(PLATFORM)
    connection = platform["Connection"]["definitions"]["dataConnectionSourceType"]["enum"]
    integration = platform["Integration"]["definitions"]["sourceType"]["enum"]
    assert vocabulary.SOURCE_TYPES == tuple(connection) == tuple(integration)
    assert set(DATA_TYPES_BY_SOURCE_TYPE) == set(vocabulary.SOURCE_TYPES)
    assert {source_type for _, source_type in INTEGRATIONS.values()} <= set(vocabulary.SOURCE_TYPES)


def test_event_types_are_the_documents_webhooks():
    fixed, patterned = [], []
    for document in (PLATFORM, BANK_FEEDS):
        for name in load_document(document)["webhooks"]:
            target = patterned if name.startswith("{") else fixed
            if name not in target:
                target.append(name)
    assert tuple(fixed) == vocabulary.EVENT_TYPES
    assert patterned == [f"{{dataType}}.{suffix}" for suffix in vocabulary.WRITE_EVENT_SUFFIXES]


def test_only_documented_event_types_count_as_documented():
    custom = {"invoice-finance", "v2.cash"}
    is_documented = vocabulary.is_documented_event_type
    assert is_documented("connection.connected", custom)
    assert is_documented("banking-transactions.write.unsuccessful", custom)
    assert is_documented("v2.cash.read.completed.successful", custom)
    assert is_documented("invoice-finance.read.completed.initial", custom)
    assert not is_documented("connection.linked", custom)
    assert not is_documented("invoice.write.successful", custom)
    assert not is_documented("lending.read.completed", custom)


def test_products_name_only_documented_data_types():
    data_types = set(vocabulary.DATA_TYPES)
    for identifier, product in {**STANDARD_PRODUCTS, **CUSTOM_PRODUCTS}.items():
        assert set(product["dataTypes"]) <= data_types, identifier
    for name, _, _, _, failing in COMPANIES:
        assert set(failing) <= data_types, name
        assert set(failing.values()) <= set(FINAL_STATUSES), name
