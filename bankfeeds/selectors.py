"""What synced: the same figures for operators (admin), the bank's systems (API) and the SMB's
mapping page."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from bankfeeds.models import (
    AccountState,
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    ConnectionState,
    SourceAccount,
    TransactionState,
)


def account_transaction_counts(*, account: SourceAccount) -> dict[str, int]:
    """State -> how many of the account's transactions are in it (every state listed)."""
    counts = dict(
        BankTransaction.objects.filter(account=account)
        .values_list("state")
        .annotate(count=Count("id"))
        .values_list("state", "count")
    )
    return {state: counts.get(state, 0) for state in TransactionState.values}


def accounts_with_progress() -> QuerySet[SourceAccount]:
    """Accounts annotated with their transactions per state and the latest synced date."""
    per_state = {
        f"{state}_count": Count("transactions", filter=Q(transactions__state=state))
        for state in TransactionState.values
    }
    return SourceAccount.objects.select_related("connection__company").annotate(
        **per_state,
        latest_synced=Max("transactions__date", filter=Q(transactions__state="synced")),
    )


def account_pushes(*, account: SourceAccount, limit: int = 50) -> list[BankFeedPush]:
    return list(BankFeedPush.objects.filter(account=account).order_by("-created_at", "-id")[:limit])


def company_source_accounts(*, company) -> QuerySet[SourceAccount]:
    """The company's source accounts still at Codat (or on their way), with their progress."""
    return (
        accounts_with_progress()
        .filter(connection__company=company)
        .exclude(state=AccountState.DELETED)
    )


def company_source_account_get(*, company, account_id: str) -> SourceAccount | None:
    """The company's account the bank calls `account_id`; a deleted one only if no other is.

    The bank's id is unique per connection, so a company with two bank-feed connections could
    hold it twice: the live one wins, then the newest.
    """
    if "\x00" in account_id:  # PostgreSQL refuses NUL in text: no account has it
        return None
    accounts = (
        SourceAccount.objects.select_related("connection")
        .filter(connection__company=company, account_id=account_id)
        .order_by("-pk")
    )
    return accounts.exclude(state=AccountState.DELETED).first() or accounts.first()


def account_transactions(*, account: SourceAccount, state: str = "") -> QuerySet[BankTransaction]:
    transactions = BankTransaction.objects.filter(account=account)
    if state:
        transactions = transactions.filter(state=state)
    return transactions


def account_push_list(*, account: SourceAccount) -> QuerySet[BankFeedPush]:
    return BankFeedPush.objects.filter(account=account)


def account_latest_pushes(*, accounts, limit: int = 5) -> dict[int, list[BankFeedPush]]:
    """Account pk -> its `limit` latest pushes, newest first (one query per account: the SMB's
    page shows a handful of accounts)."""
    return {account.pk: account_pushes(account=account, limit=limit) for account in accounts}


def company_connections(*, company) -> QuerySet[BankFeedConnection]:
    return BankFeedConnection.objects.filter(company=company).select_related("company")


def company_connection_get(*, company, connection_id: int) -> BankFeedConnection | None:
    return company_connections(company=company).filter(pk=connection_id).first()


def company_only_connection(*, company) -> BankFeedConnection | None:
    """The company's one bank-feed connection Codat has not refused; None if it has 0 or 2+."""
    live = list(company_connections(company=company).exclude(state=ConnectionState.FAILED)[:2])
    return live[0] if len(live) == 1 else None


def source_account_with_progress(*, account: SourceAccount) -> SourceAccount:
    return accounts_with_progress().get(pk=account.pk)
