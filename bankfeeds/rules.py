"""Codat's bank-feed rules, checked before anything is stored or sent (codat-domain.md §5).

Pure functions over plain dicts: the services, the CSV upload and (later) the REST API share
them. A rule that fails raises `BankFeedInvalid` naming the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date, parse_datetime

from bankfeeds.models import AccountType, Platform, TransactionType

MAX_TRANSACTIONS_PER_PUSH = 1000  # CreateBankTransactions.transactions maxItems
# Platforms that need each transaction's running balance (QuickBooks Online does not).
BALANCE_REQUIRED = frozenset({Platform.XERO, Platform.SAGE, Platform.NETSUITE, Platform.FREEAGENT})
# How far before the feed start date a transaction may be dated, where the platform says.
BACKDATING_LIMIT = {Platform.QBO: timedelta(days=7)}
# How long the SMB's link works once read, where the platform says: QuickBooks Online's carries a
# one-time code that expires after an hour (a fresh link is a new read of the connection).
LINK_LIFETIME = {Platform.QBO: timedelta(hours=1)}
ROUTING_TYPES = ("bankcode", "rtn", "aba", "swift", "bsb", "iban", "nz2", "trno", "sortcode", "blz")
# ISO 4217 codes are three capital letters; whether Codat knows a given code is Codat's to say
# (no currency list is kept here, so a new currency needs no release).
CURRENCY = re.compile(r"^[A-Z]{3}$")
TEXT_LIMITS = {"description": 4000, "counterparty": 255, "reference": 255}


class BankFeedInvalid(ValueError):
    """Input that breaks one of Codat's bank-feed rules; `field` names where."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(data: dict, name: str, *, required: bool, limit: int = 255) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BankFeedInvalid(name, "is required")
        return ""
    if not isinstance(value, str):
        raise BankFeedInvalid(name, "must be text")
    if "\x00" in value:
        # PostgreSQL cannot store it, and no bank means it.
        raise BankFeedInvalid(name, "must not contain a NUL character")
    value = value.strip()
    if required and not value:
        raise BankFeedInvalid(name, "is required")
    if len(value) > limit:
        raise BankFeedInvalid(name, f"must be at most {limit} characters")
    return value


def _decimal(data: dict, name: str, *, required: bool) -> Decimal | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BankFeedInvalid(name, "is required")
        return None
    if isinstance(value, bool):
        raise BankFeedInvalid(name, "must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise BankFeedInvalid(name, f"must be a number, not {value!r}") from None
    if not number.is_finite():
        raise BankFeedInvalid(name, "must be a finite number")
    # The size first: quantizing a huge number overflows Decimal's precision.
    if abs(number) >= Decimal("1e16"):
        raise BankFeedInvalid(name, "is too large")
    if number != number.quantize(Decimal("0.01")):
        raise BankFeedInvalid(name, "must have at most 2 decimal places")
    # One spelling per amount (12.5 and "12.50" are the same transaction's amount).
    return number.quantize(Decimal("0.01"))


def source_account_fields(data: dict) -> dict:
    """SourceAccountV2's fields, checked: model field name -> value."""
    if not isinstance(data, dict):
        raise BankFeedInvalid("body", "must be an object")
    account_type = _text(data, "accountType", required=True, limit=16)
    if account_type not in AccountType.values:
        raise BankFeedInvalid("accountType", f"must be one of {', '.join(AccountType.values)}")
    currency = _text(data, "currency", required=True, limit=3).upper()
    if not CURRENCY.match(currency):
        raise BankFeedInvalid("currency", "must be an ISO 4217 code such as GBP")
    sort_code = _text(data, "sortCode", required=False, limit=16)
    if currency == "GBP" and not sort_code:
        raise BankFeedInvalid("sortCode", "is required for GBP accounts")
    routing_info = data.get("routingInfo") or {}
    if not isinstance(routing_info, dict):
        raise BankFeedInvalid("routingInfo", "must be an object")
    if routing_info.get("type") not in (None, *ROUTING_TYPES):
        raise BankFeedInvalid("routingInfo.type", f"must be one of {', '.join(ROUTING_TYPES)}")
    account_info = data.get("accountInfo") or {}
    if not isinstance(account_info, dict):
        raise BankFeedInvalid("accountInfo", "must be an object")
    return {
        "account_id": _text(data, "id", required=True),
        "account_name": _text(data, "accountName", required=True),
        "account_type": account_type,
        "account_number": _text(data, "accountNumber", required=True, limit=64),
        "sort_code": sort_code,
        "currency": currency,
        "balance": _decimal(data, "balance", required=True),
        "routing_info": routing_info,
        "account_info": account_info,
    }


def local_datetime(value, *, field: str = "date") -> datetime:
    """A bank transaction's date as Codat reads it: the local date-time as written, any offset
    ignored (BankTransactions.date). Kept as that wall time, labelled UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        raise BankFeedInvalid(
            field, "is required (a date or date-time such as 2026-11-30T10:21:00)"
        )
    text = value.strip()
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            parsed = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise BankFeedInvalid(field, f"is not a date or date-time: {value!r}")
    # The offset is dropped, not applied: 10:21+05:00 is 10:21 at the bank.
    return parsed.replace(tzinfo=UTC)


def transaction_fields(data: dict, *, platform: str) -> tuple[dict, list[str]]:
    """A bank transaction's fields, checked for the platform: (model fields, warnings)."""
    if not isinstance(data, dict):
        raise BankFeedInvalid("transaction", "must be an object")
    amount = _decimal(data, "amount", required=True)
    balance = _decimal(data, "balance", required=platform in BALANCE_REQUIRED)
    kind = data.get("transactionType") or ""
    if kind and kind not in TransactionType.values:
        raise BankFeedInvalid(
            "transactionType", f"must be one of {', '.join(TransactionType.values)}"
        )
    reconciled = data.get("reconciled")
    if isinstance(reconciled, str):
        lowered = reconciled.strip().lower()
        reconciled = {"true": True, "false": False, "": None}.get(lowered, reconciled)
    if reconciled is not None and not isinstance(reconciled, bool):
        raise BankFeedInvalid("reconciled", "must be true or false")
    fields = {
        "transaction_id": _text(data, "id", required=True),
        "date": local_datetime(data.get("date")),
        "amount": amount,
        "balance": balance,
        "transaction_type": kind,
        "reconciled": reconciled,
        **{
            name: _text(data, name, required=False, limit=limit)
            for name, limit in TEXT_LIMITS.items()
        },
    }
    warnings = []
    # Codat pushes these anyway and warns; the warning stays with the row for the bank to see.
    if (kind == TransactionType.DEBIT and amount > 0) or (
        kind == TransactionType.CREDIT and amount < 0
    ):
        warnings.append(f"The amount's sign ({amount}) does not match transactionType {kind}.")
    return fields, warnings


def content_hash(fields: dict) -> str:
    """A digest of what a transaction says, to tell a resubmission from a changed one."""
    canonical = {
        name: (str(value) if value is not None else None)
        for name, value in sorted(fields.items())
        if name != "transaction_id"
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
