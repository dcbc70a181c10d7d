"""Bank feeds, the portal's side: onboarding, source accounts, transactions in, the pusher, and
the outcomes Codat reports.

Each service writes the desired state and, for every call to Codat, one operation row
(operations/kinds.py, the bank-feed kinds) in one transaction; the rows reach the workers on
commit and go through the fleet's rate limiter like every other call. What each call sends and
what its answer changes is bankfeeds/calls.py.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from bankfeeds.models import (
    CODAT_PUSH_STATUS,
    IN_FLIGHT,
    AccountState,
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    ConnectionState,
    MappingStatus,
    Platform,
    PushStatus,
    SourceAccount,
    TransactionState,
)
from bankfeeds.rules import (
    BACKDATING_LIMIT,
    MAX_TRANSACTIONS_PER_PUSH,
    BankFeedInvalid,
    content_hash,
    local_datetime,
    source_account_fields,
    transaction_fields,
)
from companies.models import Company
from operations.models import Operation, OperationKind
from operations.services import OperationRefused, operation_write

logger = logging.getLogger(__name__)

# Codat answered Failed or TimedOut this many times for a transaction: set aside for an operator.
MAX_FAILED_PUSHES = 3


class TransactionConflict(Exception):
    """A transaction id already stored with other content; nothing of the submission is kept."""

    def __init__(self, transaction_ids: list[str]):
        shown = ", ".join(transaction_ids[:10])
        more = f" and {len(transaction_ids) - 10} more" if len(transaction_ids) > 10 else ""
        super().__init__(
            f"Transaction id {shown}{more} is already stored with different content; a"
            " transaction cannot be changed once submitted."
        )
        self.transaction_ids = transaction_ids


# -- onboarding -------------------------------------------------------------------------------


@transaction.atomic
def bank_feed_company_onboard(
    *, name: str, platform: str, description: str = "", requested_by=None
) -> Operation:
    """Create a company at Codat and, once it exists, its connection to a bank-feeds platform
    (bankfeeds.calls.company_created writes that row when the company's row succeeds)."""
    if not name or not name.strip():
        raise BankFeedInvalid("name", "is required")
    _check_platform(platform)
    idempotency_key = uuid.uuid4()
    return operation_write(
        kind=OperationKind.CREATE_COMPANY,
        dedupe_key=f"create_company:{idempotency_key}",
        parameters={
            "name": name.strip(),
            "description": description,
            "tags": {},
            "products": [],
            "bankFeedPlatform": platform,
        },
        requested_by=requested_by,
        idempotency_key=idempotency_key,
    )


def _check_platform(platform: str) -> None:
    if platform not in Platform.values:
        raise BankFeedInvalid(
            "platform", f"must be one of {', '.join(Platform.values)} (Codat's bank-feed keys)"
        )


@transaction.atomic
def bank_feed_connection_create(
    *, company: Company, platform: str, requested_by=None
) -> BankFeedConnection:
    """A PendingAuth connection to a bank-feeds platform for an existing company."""
    _check_platform(platform)
    if company.codat_deleted_at is not None:
        raise OperationRefused(f"{company.name} was deleted at Codat.")
    connection = BankFeedConnection.objects.create(company=company, platform=platform)
    operation_write(
        kind=OperationKind.CREATE_BANK_FEED_CONNECTION,
        dedupe_key=f"create_bank_feed_connection:{connection.pk}",
        parameters={"bankFeedConnection": connection.pk},
        requested_by=requested_by,
        company=company,
    )
    return connection


@transaction.atomic
def bank_feed_link_refresh(*, connection: BankFeedConnection, requested_by=None) -> Operation:
    """Read the connection again: for QuickBooks Online that gives a link with a fresh one-time
    code (each lasts an hour)."""
    if connection.codat_id is None:
        raise OperationRefused("The connection does not exist at Codat yet.")
    return operation_write(
        kind=OperationKind.READ_BANK_FEED_LINK,
        dedupe_key=f"read_bank_feed_link:{connection.pk}",
        parameters={"bankFeedConnection": connection.pk},
        requested_by=requested_by,
        company=connection.company,
    )


@transaction.atomic
def bank_feed_mapping_read(*, connection: BankFeedConnection, requested_by=None) -> Operation:
    """Ask Codat how each source account is mapped (pending, connecting, connected, ...)."""
    if connection.codat_id is None:
        raise OperationRefused("The connection does not exist at Codat yet.")
    return operation_write(
        kind=OperationKind.READ_BANK_FEED_MAPPING,
        dedupe_key=f"read_bank_feed_mapping:{connection.pk}",
        parameters={"bankFeedConnection": connection.pk},
        requested_by=requested_by,
        company=connection.company,
    )


# -- the SMB's mapping page --------------------------------------------------------------------

MAPPING_LINK_SALT = "bankfeeds.mapping-link"
# Platforms whose accounts are mapped inside the accounting software, not through the API.
MAPPED_IN_PLATFORM = {
    Platform.QBO: "In QuickBooks Online, open Banking (Transactions > Bank transactions), choose"
    " Link account, find your bank and pick the account to feed.",
    Platform.SAGE: "In Sage, open Banking, choose Connect to bank feed for the account, and"
    " select your bank's feed.",
}


def mapping_link_path(*, connection: BankFeedConnection) -> str:
    """The SMB's link to the mapping page: signed for this connection and lasting
    BANK_FEEDS_MAPPING_LINK_DAYS; the page's session starts only on its POST."""
    from django.core import signing
    from django.urls import reverse

    signed = signing.dumps({"connection": connection.pk}, salt=MAPPING_LINK_SALT)
    return reverse("bankfeeds:link", args=(signed,))


def connection_from_mapping_link(signed: str) -> BankFeedConnection | None:
    from django.core import signing

    try:
        payload = signing.loads(
            signed,
            salt=MAPPING_LINK_SALT,
            max_age=timedelta(days=settings.BANK_FEEDS_MAPPING_LINK_DAYS).total_seconds(),
        )
        pk = int(payload["connection"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (
        BankFeedConnection.objects.select_related("company")
        .filter(pk=pk, state=ConnectionState.CREATED)
        .first()
    )


@transaction.atomic
def bank_feed_mapping_set(
    *, account: SourceAccount, target_account_id: str | None, feed_start_date=None
) -> Operation:
    """The SMB maps one account (Codat takes one per request) to a target account Codat offered,
    or (None) to a new account the platform creates."""
    account = (
        SourceAccount.objects.select_for_update().select_related("connection").get(pk=account.pk)
    )
    if account.connection.platform in MAPPED_IN_PLATFORM:
        raise OperationRefused(MAPPED_IN_PLATFORM[account.connection.platform])
    if account.state not in (AccountState.ACTIVE, AccountState.UPDATING):
        raise OperationRefused("This account is not at Codat (yet).")
    offered = {option["id"] for option in account.target_account_options}
    if target_account_id and target_account_id not in offered:
        raise BankFeedInvalid("targetAccountId", "is not one of the accounts offered")
    account.mapping_error = ""
    account.save(update_fields=["mapping_error"])
    return operation_write(
        kind=OperationKind.SET_BANK_FEED_MAPPING,
        dedupe_key=f"set_bank_feed_mapping:{account.pk}",
        parameters={
            "sourceAccount": account.pk,
            "accountId": account.account_id,
            "targetAccountId": target_account_id or "",
            "feedStartDate": feed_start_date.strftime("%Y-%m-%dT00:00:00")
            if feed_start_date
            else "",
        },
        company=account.connection.company,
    )


# -- source accounts --------------------------------------------------------------------------


def _source_account_operation(account: SourceAccount, *, kind: str, change: str, requested_by):
    return operation_write(
        kind=kind,
        dedupe_key=f"{kind}:{account.pk}",
        parameters={
            "sourceAccount": account.pk,
            "accountId": account.account_id,
            "change": change,
        },
        requested_by=requested_by,
        company=account.connection.company,
    )


def source_account_operation_start(account: SourceAccount, *, requested_by=None) -> None:
    """The create row of an account waiting for its connection to exist at Codat."""
    _source_account_operation(
        account,
        kind=OperationKind.CREATE_SOURCE_ACCOUNT,
        change="create",
        requested_by=requested_by,
    )


@transaction.atomic
def source_account_create(
    *, connection: BankFeedConnection, data: dict, requested_by=None
) -> SourceAccount:
    """A source account (Codat's v2 fields, checked first). Sent at once if the connection
    exists at Codat, otherwise as soon as it does."""
    if connection.state == ConnectionState.FAILED:
        raise OperationRefused("Codat refused this connection; create a new one.")
    fields = source_account_fields(data)
    if SourceAccount.objects.filter(
        connection=connection, account_id=fields["account_id"]
    ).exists():
        raise BankFeedInvalid("id", f"an account {fields['account_id']} already exists here")
    account = SourceAccount(connection=connection, **fields)
    account.full_clean()
    account.save()
    if connection.codat_id is not None:
        source_account_operation_start(account, requested_by=requested_by)
    return account


@transaction.atomic
def source_account_update(
    *, account: SourceAccount, data: dict, requested_by=None
) -> SourceAccount:
    """Change an account's fields at Codat (all v2 fields given again, checked first)."""
    account = SourceAccount.objects.select_for_update().get(pk=account.pk)
    if account.state in (AccountState.DELETING, AccountState.DELETED, AccountState.FAILED):
        raise OperationRefused(f"The account is {account.get_state_display().lower()}.")
    fields = source_account_fields({"id": account.account_id, **data})
    if fields["account_id"] != account.account_id:
        raise BankFeedInvalid("id", "an account's id cannot change")
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    if account.state == AccountState.ACTIVE:
        account.state = AccountState.UPDATING
    account.save()
    if account.state == AccountState.UPDATING:
        _source_account_operation(
            account,
            kind=OperationKind.UPDATE_SOURCE_ACCOUNT,
            change="update",
            requested_by=requested_by,
        )
    return account


@transaction.atomic
def source_account_delete(*, account: SourceAccount, requested_by=None) -> SourceAccount:
    """Delete the account at Codat: its feed stops; the accounting record stays."""
    account = SourceAccount.objects.select_for_update().get(pk=account.pk)
    if account.state == AccountState.DELETED:
        return account
    account.state = AccountState.DELETING
    account.save(update_fields=["state"])
    _source_account_operation(
        account,
        kind=OperationKind.DELETE_SOURCE_ACCOUNT,
        change="delete",
        requested_by=requested_by,
    )
    return account


def mapping_status_observed(
    *,
    connection_codat_id,
    account_id: str,
    status: str,
    observed_at: datetime,
    feed_start_date: datetime | None = None,
    target_account_name: str = "",
) -> bool:
    """Codat's word on an account's mapping (API answer or bankFeeds.sourceAccount.* webhook);
    an older report never overwrites a newer one. Whether it was applied."""
    if status not in MappingStatus.values:
        status = MappingStatus.UNKNOWN
    account = (
        SourceAccount.objects.select_for_update()
        .filter(connection__codat_id=connection_codat_id, account_id=account_id)
        .first()
    )
    if account is None:
        return False
    if account.mapping_observed_at and observed_at < account.mapping_observed_at:
        return False
    account.mapping_status = status
    account.mapping_observed_at = observed_at
    fields = ["mapping_status", "mapping_observed_at"]
    if feed_start_date is not None:
        account.feed_start_date = feed_start_date
        fields.append("feed_start_date")
    if target_account_name:
        account.target_account_name = target_account_name[:255]
        fields.append("target_account_name")
    account.save(update_fields=fields)
    if status == MappingStatus.CONNECTED:
        account_push_soon(account.pk)
    return True


# -- transactions in --------------------------------------------------------------------------


@dataclass
class Submission:
    created: int = 0
    unchanged: int = 0
    warnings: dict[str, list[str]] = field(default_factory=dict)  # transaction id -> warnings


def transactions_submit(*, account: SourceAccount, rows: list[dict]) -> Submission:
    """Store a batch of the bank's transactions for one account, each once under its id.

    Every row is checked first (BankFeedInvalid names `transactions[i].field`); a row whose id
    is stored with other content raises TransactionConflict. Either way nothing is stored. A
    row stored before with the same content is counted as unchanged.
    """
    if account.state in (AccountState.DELETING, AccountState.DELETED, AccountState.FAILED):
        raise OperationRefused(f"The account is {account.get_state_display().lower()}.")
    platform = account.connection.platform
    checked: dict[str, tuple[dict, list[str], str]] = {}
    conflicts: list[str] = []
    for index, row in enumerate(rows):
        try:
            fields, warnings = transaction_fields(row, platform=platform)
        except BankFeedInvalid as error:
            raise BankFeedInvalid(f"transactions[{index}].{error.field}", error.reason) from None
        digest = content_hash(fields)
        earlier = checked.get(fields["transaction_id"])
        if earlier is not None and earlier[2] != digest:
            conflicts.append(fields["transaction_id"])
        checked[fields["transaction_id"]] = (fields, warnings, digest)
    # A concurrent submission of the same ids can commit between the read and the insert: the
    # unique constraint stops the insert, and a second pass reads what it stored (the same
    # content is then unchanged, other content a conflict).
    for attempt in range(2):
        try:
            return _transactions_store(account, checked, conflicts)
        except IntegrityError:
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _transactions_store(account: SourceAccount, checked: dict, conflicts: list[str]) -> Submission:
    stored = dict(
        BankTransaction.objects.filter(
            account=account, transaction_id__in=list(checked)
        ).values_list("transaction_id", "content_hash")
    )
    conflicts = conflicts + [tid for tid, digest in stored.items() if checked[tid][2] != digest]
    if conflicts:
        raise TransactionConflict(sorted(set(conflicts)))
    new = [
        BankTransaction(account=account, content_hash=digest, warnings=warnings, **fields)
        for tid, (fields, warnings, digest) in checked.items()
        if tid not in stored
    ]
    BankTransaction.objects.bulk_create(new, batch_size=1000)
    if new:
        account_push_soon(account.pk)
    return Submission(
        created=len(new),
        unchanged=len(stored),
        warnings={tid: w for tid, (_, w, _) in checked.items() if w},
    )


def account_push_soon(account_id: int) -> None:
    """After commit, the pusher looks at the account."""
    from bankfeeds.tasks import account_push_task

    transaction.on_commit(lambda: _send(account_push_task, account_id))


def _send(task, *args) -> None:
    try:
        task.apply_async(args, queue="portal")
    except Exception:
        # Redis down: the beat round finds the account's waiting transactions later.
        logger.exception("bankfeeds.enqueue_failed")


@transaction.atomic
def transactions_requeue(*, transaction_ids: list[int]) -> int:
    """An operator puts set-aside transactions back in the queue (the pusher's rules apply
    again: one still older than the latest pushed is set aside again)."""
    rows = BankTransaction.objects.filter(pk__in=transaction_ids, state=TransactionState.SET_ASIDE)
    accounts = set(rows.values_list("account_id", flat=True))
    count = rows.update(state=TransactionState.WAITING, set_aside_reason="", failed_pushes=0)
    for account_id in accounts:
        account_push_soon(account_id)
    return count


# -- the pusher -------------------------------------------------------------------------------


def _set_aside(queryset, reason: str) -> int:
    return queryset.update(state=TransactionState.SET_ASIDE, set_aside_reason=reason, push=None)


@transaction.atomic
def account_push_next(*, account_id: int, now: datetime | None = None) -> BankFeedPush | None:
    """Send the account's next batch, if it may have one now.

    Codat's rules: one account at a time in date order, at most 1,000 per push, never older than
    the account's latest transaction already pushed, never in the future, and (QuickBooks
    Online) at most 7 days before the feed start date. One push in flight per account. What can
    never be pushed is set aside with the reason.
    """
    now = now or timezone.now()
    account = (
        SourceAccount.objects.select_for_update()
        .select_related("connection__company")
        .filter(pk=account_id)
        .first()
    )
    if account is None or account.state not in (AccountState.ACTIVE, AccountState.UPDATING):
        return None
    if account.connection.codat_id is None:
        return None
    if account.pushes.filter(status__in=IN_FLIGHT).exists():
        return None
    waiting = BankTransaction.objects.filter(account=account, state=TransactionState.WAITING)
    if account.mapping_status == MappingStatus.DISCONNECTED:
        _set_aside(waiting, "The account's feed is disconnected at Codat (the SMB unmapped it).")
        return None
    if account.mapping_status != MappingStatus.CONNECTED:
        return None  # waits until the SMB maps it
    latest = BankTransaction.objects.filter(
        account=account, state__in=(TransactionState.IN_PUSH, TransactionState.SYNCED)
    ).aggregate(latest=Max("date"))["latest"]
    if latest is not None:
        _set_aside(
            waiting.filter(date__lt=latest),
            f"Dated before {latest:%Y-%m-%d %H:%M:%S}, the account's latest transaction already"
            " pushed: Codat accepts no transaction older than that.",
        )
    limit = BACKDATING_LIMIT.get(account.connection.platform)
    if limit is not None and account.feed_start_date is not None:
        earliest = local_datetime(account.feed_start_date.replace(tzinfo=None)) - limit
        _set_aside(
            waiting.filter(date__lt=earliest),
            f"Dated before {earliest:%Y-%m-%d}: {account.connection.get_platform_display()}"
            f" accepts transactions at most {limit.days} days before the feed start date.",
        )
    # Dates are the bank's local wall times; "now" is compared in UTC, so a bank east of UTC
    # waits a few hours for its latest transactions rather than risk Codat's future-date refusal.
    batch = list(
        waiting.filter(date__lte=now)
        .order_by("date", "id")
        .values_list("pk", "date")[:MAX_TRANSACTIONS_PER_PUSH]
    )
    if not batch:
        return None
    push = BankFeedPush.objects.create(
        account=account,
        transaction_count=len(batch),
        first_date=batch[0][1],
        last_date=batch[-1][1],
    )
    BankTransaction.objects.filter(pk__in=[pk for pk, _ in batch]).update(
        state=TransactionState.IN_PUSH, push=push
    )
    operation_write(
        kind=OperationKind.PUSH_BANK_TRANSACTIONS,
        dedupe_key=f"push_bank_transactions:{push.pk}",
        parameters={"bankFeedPush": push.pk, "accountId": account.account_id},
        company=account.connection.company,
    )
    return push


def pushes_round(*, now: datetime | None = None) -> dict[str, int]:
    """Beat's round: accounts with waiting transactions get their next push, and pushes Codat
    has left Pending for a while are asked about (a missed webhook must not stall a feed)."""
    now = now or timezone.now()
    account_ids = (
        SourceAccount.objects.filter(
            state__in=(AccountState.ACTIVE, AccountState.UPDATING),
            transactions__state=TransactionState.WAITING,
        )
        .exclude(pushes__status__in=IN_FLIGHT)
        .values_list("pk", flat=True)
        .distinct()
    )
    pushed = sum(1 for pk in list(account_ids) if account_push_next(account_id=pk, now=now))
    stale = BankFeedPush.objects.filter(
        status=PushStatus.PENDING,
        push_operation_key__isnull=False,
        sent_at__lte=now - timedelta(seconds=settings.BANK_FEEDS_POLL_PENDING_SECONDS),
    ).select_related("account__connection__company")
    checked = 0
    for push in stale:
        push_check(push=push)
        checked += 1
    return {"pushed": pushed, "checked": checked}


@transaction.atomic
def push_check(*, push: BankFeedPush) -> Operation:
    """Ask Codat where a push stands (the fallback to the write webhooks)."""
    return operation_write(
        kind=OperationKind.CHECK_BANK_FEED_PUSH,
        dedupe_key=f"check_bank_feed_push:{push.pk}",
        parameters={"bankFeedPush": push.pk, "accountId": push.account.account_id},
        company=push.account.connection.company,
    )


# The class half of the two-key advisory lock on a push's outcome (any fixed 32-bit number; this
# one spells "bfpo"); the other half is the push operation key's hash.
PUSH_OUTCOME_LOCK_CLASS = 0x6266706F


def push_outcome_lock(push_operation_key) -> None:
    """Hold, until the transaction commits, the lock on one push operation key's outcome.

    Codat can answer a push and report its outcome in a webhook at almost the same moment: the
    event's transaction may look for the push before the push's own transaction has recorded
    the key, while that one looks for a reported outcome before the event's has committed, and
    both miss (the push then waited for the polling fallback). Taken by both before they look,
    the lock puts them in turn, and the second sees what the first committed.
    """
    if connection.vendor != "postgresql":  # SQLite, the development fallback, has one writer
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            [PUSH_OUTCOME_LOCK_CLASS, str(push_operation_key)],
        )


@transaction.atomic
def push_outcome_observed(*, push_operation_key, status: str, error: str = "") -> bool:
    """Codat's word on a push (write webhook or a read of the push). Only a push in flight
    moves, so a repeated or late report changes nothing. Whether it moved."""
    ours = CODAT_PUSH_STATUS.get(status)
    if ours is None:
        raise BankFeedInvalid("status", f"unknown push status {status!r}")
    push = (
        BankFeedPush.objects.select_for_update()
        .filter(push_operation_key=push_operation_key, status__in=IN_FLIGHT)
        .first()
    )
    if push is None or ours == PushStatus.PENDING:
        if push is not None and push.status == PushStatus.SENDING:
            push.status = PushStatus.PENDING
            push.save(update_fields=["status"])
        return False
    push.status = ours
    push.completed_at = timezone.now()
    push.error = error[:5000]
    push.save(update_fields=["status", "completed_at", "error"])
    rows = BankTransaction.objects.filter(push=push, state=TransactionState.IN_PUSH)
    if ours == PushStatus.SUCCESS:
        rows.update(state=TransactionState.SYNCED)
    else:
        # Codat wrote nothing of a Failed or TimedOut push: the batch goes back in the queue,
        # oldest first, and is set aside once Codat has refused it MAX_FAILED_PUSHES times.
        rows.update(state=TransactionState.WAITING, push=None, failed_pushes=F("failed_pushes") + 1)
        _set_aside(
            BankTransaction.objects.filter(
                account_id=push.account_id,
                state=TransactionState.WAITING,
                failed_pushes__gte=MAX_FAILED_PUSHES,
            ),
            f"Codat answered {status} to {MAX_FAILED_PUSHES} pushes of this transaction"
            + (f"; the last said: {error}" if error else "."),
        )
    account_push_soon(push.account_id)
    return True


# -- GDPR erasure -----------------------------------------------------------------------------


@transaction.atomic
def company_bank_feeds_erase(*, company: Company) -> int:
    """An erased company's bank-feed connections, with their source accounts, transactions
    and pushes."""
    return BankFeedConnection.objects.filter(company=company).delete()[0]
