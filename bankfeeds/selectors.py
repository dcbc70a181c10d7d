"""What synced, for the admin (and later the API and the SMB's page)."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from bankfeeds.models import BankFeedPush, BankTransaction, SourceAccount, TransactionState


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
