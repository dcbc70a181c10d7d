"""Codat's bank-feed rules, checked before anything is stored or sent (no database)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bankfeeds.rules import (
    BankFeedInvalid,
    content_hash,
    local_datetime,
    source_account_fields,
    transaction_fields,
)

ACCOUNT = {
    "id": "acc-1",
    "accountName": "Business Current",
    "accountType": "checking",
    "accountNumber": "12345678",
    "sortCode": "040004",
    "currency": "GBP",
    "balance": 1520.5,
}


def test_a_v2_source_account_is_read_into_the_model_fields():
    fields = source_account_fields(ACCOUNT)
    assert fields["account_id"] == "acc-1"
    assert fields["account_type"] == "checking"
    assert fields["balance"] == Decimal("1520.50")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"accountName": None}, "accountName", "is required"),
        ({"accountType": "Credit"}, "accountType", "must be one of"),
        ({"currency": "pounds"}, "currency", "at most 3"),
        ({"currency": "G1P"}, "currency", "ISO 4217"),
        ({"sortCode": ""}, "sortCode", "required for GBP"),
        ({"balance": "lots"}, "balance", "must be a number"),
        ({"balance": None}, "balance", "is required"),
        ({"routingInfo": {"type": "carrier-pigeon"}}, "routingInfo.type", "must be one of"),
    ],
)
def test_a_source_account_breaking_a_v2_rule_names_the_field_and_the_reason(change, field, reason):
    with pytest.raises(BankFeedInvalid) as caught:
        source_account_fields({**ACCOUNT, **change})
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_a_usd_account_needs_no_sort_code():
    assert (
        source_account_fields({**ACCOUNT, "currency": "usd", "sortCode": None})["currency"] == "USD"
    )


TX = {"id": "t-1", "date": "2026-11-20T10:21:00", "amount": -12.5, "transactionType": "Debit"}


def test_balance_is_required_where_the_platform_needs_it_and_optional_for_quickbooks_online():
    fields, _ = transaction_fields(TX, platform="hcws")
    assert fields["balance"] is None
    with pytest.raises(BankFeedInvalid) as caught:
        transaction_fields(TX, platform="gbol")
    assert caught.value.field == "balance"
    fields, _ = transaction_fields({**TX, "balance": "100.00"}, platform="gbol")
    assert fields["balance"] == Decimal("100.00")


def test_transaction_type_must_be_one_of_codats_and_a_wrong_sign_is_a_kept_warning():
    with pytest.raises(BankFeedInvalid) as caught:
        transaction_fields({**TX, "transactionType": "Refund"}, platform="hcws")
    assert caught.value.field == "transactionType"
    _, warnings = transaction_fields({**TX, "amount": 12.5}, platform="hcws")
    assert warnings and "Debit" in warnings[0]
    _, warnings = transaction_fields(TX, platform="hcws")
    assert warnings == []


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2026-11-20T10:21:00", datetime(2026, 11, 20, 10, 21, tzinfo=UTC)),
        # Codat ignores the offset: 10:21 at the bank stays 10:21.
        ("2026-11-20T10:21:00-05:00", datetime(2026, 11, 20, 10, 21, tzinfo=UTC)),
        ("2026-11-20T10:21:00Z", datetime(2026, 11, 20, 10, 21, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ],
)
def test_dates_are_read_as_codat_reads_them(written, read):
    assert local_datetime(written) == read


@pytest.mark.parametrize("written", ["", None, "20/11/2026", "2026-02-30", "yesterday"])
def test_an_unreadable_date_is_refused(written):
    with pytest.raises(BankFeedInvalid) as caught:
        transaction_fields({**TX, "date": written}, platform="hcws")
    assert caught.value.field == "date"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"amount": None}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"reconciled": "maybe"}, "reconciled"),
        ({"amount": True}, "amount"),
    ],
)
def test_other_bad_fields_are_named(change, field):
    with pytest.raises(BankFeedInvalid) as caught:
        transaction_fields({**TX, **change}, platform="hcws")
    assert caught.value.field == field


def test_the_content_hash_tells_a_resubmission_from_a_change():
    same, _ = transaction_fields({**TX, "amount": "-12.50"}, platform="hcws")
    original, _ = transaction_fields(TX, platform="hcws")
    changed, _ = transaction_fields({**TX, "amount": -12.51}, platform="hcws")
    assert content_hash(same) == content_hash(original)
    assert content_hash(changed) != content_hash(original)
