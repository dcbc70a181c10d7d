"""Building blocks for the bank-feed tests."""

import uuid
from datetime import timedelta

from django.utils import timezone

from bankfeeds.models import (
    AccountState,
    BankFeedConnection,
    ConnectionState,
    MappingStatus,
    SourceAccount,
)
from operations.models import Operation, OperationState
from operations.worker import operation_run
from tests.factories import CompanyFactory

ACCOUNT = {
    "accountName": "Business Current",
    "accountType": "checking",
    "accountNumber": "12345678",
    "sortCode": "040004",
    "currency": "GBP",
    "balance": 1520.5,
}


def mapped_account(*, platform="hcws", feed_start_days_ago=3, **fields) -> SourceAccount:
    """An account the SMB has mapped, without Codat (for the pusher's own rules)."""
    connection = BankFeedConnection.objects.create(
        company=CompanyFactory(),
        platform=platform,
        state=ConnectionState.CREATED,
        codat_id=uuid.uuid4(),
    )
    values = {
        "account_id": f"acc-{uuid.uuid4().hex[:8]}",
        "account_name": "Business Current",
        "account_type": "checking",
        "account_number": "12345678",
        "sort_code": "040004",
        "currency": "GBP",
        "balance": 0,
        "state": AccountState.ACTIVE,
        "mapping_status": MappingStatus.CONNECTED,
        "feed_start_date": timezone.now() - timedelta(days=feed_start_days_ago),
        **fields,
    }
    return SourceAccount.objects.create(connection=connection, **values)


def transactions(count: int, *, start, step=timedelta(minutes=1), prefix="t", balance=None):
    rows = []
    for number in range(count):
        row = {
            "id": f"{prefix}-{number}",
            "date": (start + step * number).strftime("%Y-%m-%dT%H:%M:%S"),
            "amount": -1 - number % 50,
            "transactionType": "Debit",
            "description": f"Card payment {number}",
        }
        if balance is not None:
            row["balance"] = balance - number
        rows.append(row)
    return rows


def run_due_operations(*, limit: int = 200) -> list[str]:
    """Run every due row in this process, as a worker would, until none is left."""
    outcomes = []
    for _ in range(limit):
        due = (
            Operation.objects.filter(
                state=OperationState.PENDING, next_attempt_at__lte=timezone.now()
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if due is None:
            return outcomes
        outcomes.append(operation_run(operation_id=due))
    raise AssertionError(f"rows still due after {limit} runs: {outcomes[-5:]}")
