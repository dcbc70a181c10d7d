"""What each bank-feed operation sends to Codat, and what its answer changes.

operations/kinds.py points its bank-feed specs here. A `*_at_codat` function runs in the worker
with the row claimed (outside any transaction); the others run inside the transaction that
records the row's outcome. Retried calls first look at what Codat already has, so a call whose
answer was lost is not repeated (a second connection, a second push of the same transactions).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from bankfeeds.models import (
    IN_FLIGHT,
    AccountState,
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    ConnectionState,
    PushStatus,
    SourceAccount,
    TransactionState,
)
from codat import errors as codat_errors
from companies.codat_times import parse_optional_codat_datetime
from operations.models import Operation, OperationState

logger = logging.getLogger(__name__)

# How far back (before the push was first sent) a retried push looks in Codat's push history.
HISTORY_SKEW = timedelta(minutes=2)


def _connection(operation: Operation) -> BankFeedConnection:
    return BankFeedConnection.objects.select_related("company").get(
        pk=operation.parameters["bankFeedConnection"]
    )


def _account(operation: Operation) -> SourceAccount:
    return SourceAccount.objects.select_related("connection__company").get(
        pk=operation.parameters["sourceAccount"]
    )


def _ids(account: SourceAccount) -> tuple[str, str]:
    return str(account.connection.company.codat_id), str(account.connection.codat_id)


# -- companies created for bank feeds -----------------------------------------------------------


def company_created(operation: Operation, state: str, error: str) -> None:
    """A create_company row finished; one made by bank_feed_company_onboard goes on to its
    bank-feed connection."""
    platform = operation.parameters.get("bankFeedPlatform")
    if not platform or state != OperationState.SUCCEEDED:
        return
    from bankfeeds.services import bank_feed_connection_create

    company = Operation.objects.select_related("company").get(pk=operation.pk).company
    bank_feed_connection_create(
        company=company, platform=platform, requested_by=operation.requested_by
    )


# -- connections ------------------------------------------------------------------------------


def connection_create_at_codat(client, operation: Operation) -> dict:
    connection = _connection(operation)
    company_id = str(connection.company.codat_id)
    if operation.attempts > 1:
        # The first attempt may have created it before its answer was lost: a connection to
        # this platform that no bank-feed connection of the portal holds is that one.
        known = {
            str(codat_id)
            for codat_id in BankFeedConnection.objects.filter(
                company=connection.company, codat_id__isnull=False
            ).values_list("codat_id", flat=True)
        }
        for existing in client.iter_connections(company_id):
            if (
                existing.get("integrationKey") == connection.platform
                and existing["id"] not in known
            ):
                return existing
    return client.create_connection(company_id, connection.platform)


def connection_created(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from bankfeeds.services import source_account_operation_start
    from companies.services import connection_mirror_from_codat

    connection = _connection(operation)
    now = timezone.now()
    connection.codat_id = answer["id"]
    connection.link_url = answer.get("linkUrl") or ""
    connection.link_url_fetched_at = now
    connection.state = ConnectionState.CREATED
    connection.last_error = ""
    connection.save(
        update_fields=["codat_id", "link_url", "link_url_fetched_at", "state", "last_error"]
    )
    connection_mirror_from_codat(company=connection.company, data=answer, observed_at=now)
    # Accounts the bank created while the connection was on its way are sent now.
    for account in connection.source_accounts.filter(state=AccountState.CREATING):
        source_account_operation_start(account, requested_by=operation.requested_by)
    return {"connectionId": answer["id"]}, {}


def connection_create_finished(operation: Operation, state: str, error: str) -> None:
    if state in (OperationState.FAILED, OperationState.CANCELLED):
        BankFeedConnection.objects.filter(
            pk=operation.parameters["bankFeedConnection"], state=ConnectionState.CREATING
        ).update(state=ConnectionState.FAILED, last_error=error or state)


def connection_read_at_codat(client, operation: Operation) -> dict:
    connection = _connection(operation)
    return client.get_connection(str(connection.company.codat_id), str(connection.codat_id))


def connection_read(operation: Operation, answer: dict) -> tuple[dict, dict]:
    BankFeedConnection.objects.filter(pk=operation.parameters["bankFeedConnection"]).update(
        link_url=answer.get("linkUrl") or "", link_url_fetched_at=timezone.now()
    )
    return {"status": answer.get("status")}, {}


# -- source accounts --------------------------------------------------------------------------


def source_account_create_at_codat(client, operation: Operation) -> dict:
    account = _account(operation)
    company_id, connection_id = _ids(account)
    if operation.attempts > 1:
        for existing in client.list_source_accounts(company_id, connection_id):
            if existing.get("id") == account.account_id:
                return existing
    return client.create_source_account(company_id, connection_id, account.codat_body())


# The update body is Codat's v1 SourceAccount, which allows no other properties.
V1_UPDATE_FIELDS = (
    "id",
    "accountName",
    "accountType",
    "accountNumber",
    "sortCode",
    "currency",
    "balance",
)


def source_account_update_at_codat(client, operation: Operation) -> dict:
    account = _account(operation)
    company_id, connection_id = _ids(account)
    body = {k: v for k, v in account.codat_body().items() if k in V1_UPDATE_FIELDS}
    return client.update_source_account(company_id, connection_id, account.account_id, body)


def source_account_delete_at_codat(client, operation: Operation) -> None:
    account = _account(operation)
    company_id, connection_id = _ids(account)
    client.delete_source_account(company_id, connection_id, account.account_id)


def source_account_answered(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from bankfeeds.services import mapping_status_observed

    account = _account(operation)
    if answer.get("status"):
        mapping_status_observed(
            connection_codat_id=account.connection.codat_id,
            account_id=account.account_id,
            status=answer["status"],
            observed_at=timezone.now(),
            feed_start_date=parse_optional_codat_datetime(
                answer.get("feedStartDate"), field="feedStartDate"
            ),
        )
    return {"accountId": account.account_id, "status": answer.get("status")}, {}


def source_account_change_finished(operation: Operation, state: str, error: str) -> None:
    change = operation.parameters["change"]
    account = SourceAccount.objects.filter(pk=operation.parameters["sourceAccount"])
    if state == OperationState.SUCCEEDED:
        done = AccountState.DELETED if change == "delete" else AccountState.ACTIVE
        account.update(state=done, last_error="")
        if done == AccountState.ACTIVE:
            from bankfeeds.services import account_push_soon

            account_push_soon(operation.parameters["sourceAccount"])
        return
    # A refused create leaves nothing at Codat; a refused update or delete leaves the account
    # as Codat has it, active.
    after = AccountState.FAILED if change == "create" else AccountState.ACTIVE
    account.update(state=after, last_error=error or state)


# -- mapping ----------------------------------------------------------------------------------


def mapping_read_at_codat(client, operation: Operation) -> dict:
    connection = _connection(operation)
    mappings = client.get_bank_account_mapping(
        str(connection.company.codat_id), str(connection.codat_id)
    )
    return {"mappings": mappings}


def mapping_read(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from bankfeeds.services import mapping_status_observed

    connection = _connection(operation)
    now = timezone.now()
    seen = 0
    for mapping in answer.get("mappings") or []:
        seen += mapping_status_observed(
            connection_codat_id=connection.codat_id,
            account_id=str(mapping.get("sourceAccountId")),
            status=str(mapping.get("status") or "unknown"),
            observed_at=now,
            feed_start_date=parse_optional_codat_datetime(
                mapping.get("feedStartDate"), field="feedStartDate"
            ),
            target_account_name=mapping.get("targetAccountName") or "",
        )
        options = [
            {
                "id": str(option.get("id")),
                "name": str(option.get("name") or option.get("id")),
                "accountNumber": option.get("accountNumber") or "",
            }
            for option in mapping.get("targetAccountOptions") or []
            if isinstance(option, dict) and option.get("id")
        ]
        SourceAccount.objects.filter(
            connection=connection, account_id=str(mapping.get("sourceAccountId"))
        ).update(target_account_options=options)
    return {"accounts": seen}, {}


def mapping_set_at_codat(client, operation: Operation) -> dict:
    account = _account(operation)
    company_id, connection_id = _ids(account)
    return client.set_bank_account_mapping(
        company_id,
        connection_id,
        account.account_id,
        target_account_id=operation.parameters.get("targetAccountId") or None,
        feed_start_date=operation.parameters.get("feedStartDate") or None,
    )


def mapping_set(operation: Operation, answer: dict) -> tuple[dict, dict]:
    """Codat answers 200 even when the mapping failed: its status and error say so."""
    from bankfeeds.services import mapping_status_observed

    account = _account(operation)
    status = str(answer.get("status") or "")
    if status.lower() == "failed":
        SourceAccount.objects.filter(pk=account.pk).update(
            mapping_error=str(answer.get("error") or "Codat could not map the account")[:2000]
        )
        return {"status": status, "error": answer.get("error")}, {}
    target = answer.get("targetAccountId") or operation.parameters.get("targetAccountId") or ""
    names = {o["id"]: o["name"] for o in account.target_account_options}
    SourceAccount.objects.filter(pk=account.pk).update(
        mapping_error="", target_account_id=str(target)[:255]
    )
    mapping_status_observed(
        connection_codat_id=account.connection.codat_id,
        account_id=account.account_id,
        status=status,
        observed_at=timezone.now(),
        target_account_name=names.get(target, "") or ("a new account" if not target else ""),
    )
    return {"status": status}, {}


# -- pushes -----------------------------------------------------------------------------------


def _push(operation: Operation) -> BankFeedPush:
    return BankFeedPush.objects.select_related("account__connection__company").get(
        pk=operation.parameters["bankFeedPush"]
    )


class PushUndecided(codat_errors.CodatServerError):
    """Codat's history holds a push that may be this one, still Pending: ask again later
    rather than risk sending the same transactions twice."""


def push_at_codat(client, operation: Operation) -> dict:
    push = _push(operation)
    account = push.account
    company_id, connection_id = _ids(account)
    transactions = list(
        BankTransaction.objects.filter(push=push, state=TransactionState.IN_PUSH).order_by(
            "date", "id"
        )
    )
    if push.sent_at is not None:
        found = _push_already_at_codat(client, push, [t.transaction_id for t in transactions])
        if found is not None:
            return found
    else:
        push.sent_at = timezone.now()
        push.save(update_fields=["sent_at"])
    return client.push_bank_transactions(
        company_id, connection_id, account.account_id, [t.codat_body() for t in transactions]
    )


def _push_already_at_codat(client, push: BankFeedPush, transaction_ids: list[str]) -> dict | None:
    """The push an earlier attempt made, if Codat's history shows it; None if it has none.

    Codat's push history does not carry the pushed data, so a push is recognised by its
    connection, data type and time, and by the records it created once it succeeded. A
    candidate that cannot be told from another account's push whose answer was also lost is
    waited for (PushUndecided) until its outcome names its records.
    """
    account = push.account
    company_id, connection_id = _ids(account)
    since = push.sent_at - HISTORY_SKEW
    known = {
        str(key)
        for key in BankFeedPush.objects.filter(
            account__connection=account.connection,
            push_operation_key__isnull=False,
            created_at__gte=since - HISTORY_SKEW,
        ).values_list("push_operation_key", flat=True)
    }
    ours = set(transaction_ids)
    candidates = []
    for remote in client.iter_push_operations(company_id, order_by="-requestedOnUtc"):
        requested = parse_optional_codat_datetime(
            remote.get("requestedOnUtc"), field="requestedOnUtc"
        )
        if requested is not None and requested < since:
            break  # newest first: the rest is older than this push
        if (
            remote.get("dataType") != "bankTransactions"
            or remote.get("dataConnectionKey") != connection_id
            or remote.get("pushOperationKey") in known
        ):
            continue
        records = {
            (change.get("recordRef") or {}).get("id") for change in remote.get("changes") or []
        }
        if records and records & ours:
            return remote
        if not records or remote.get("status") != "Success":
            candidates.append(remote)
    others_unanswered = (
        BankFeedPush.objects.filter(
            account__connection=account.connection,
            status=PushStatus.SENDING,
            sent_at__isnull=False,
        )
        .exclude(pk=push.pk)
        .exists()
    )
    if len(candidates) == 1 and not others_unanswered:
        return candidates[0]
    if any(c.get("status") == "Pending" for c in candidates):
        raise PushUndecided(
            "A push in Codat's history may be this one and is still Pending",
            http_status=503,
        )
    return None


def push_answered(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from bankfeeds.services import push_outcome_lock, push_outcome_observed
    from webhooks.models import WriteOutcome

    key = answer["pushOperationKey"]
    push_outcome_lock(key)
    BankFeedPush.objects.filter(pk=operation.parameters["bankFeedPush"]).update(
        push_operation_key=key, status=PushStatus.PENDING
    )
    warnings = (answer.get("validation") or {}).get("warnings") or []
    if answer.get("status") in ("Success", "Failed", "TimedOut"):
        push_outcome_observed(
            push_operation_key=key, status=answer["status"], error=_push_error(answer)
        )
    else:
        # The write webhook may have come before this answer was recorded (Codat can finish a
        # push at once): its outcome is kept, keyed by the push, so apply it now.
        reported = (
            WriteOutcome.objects.filter(
                push_operation_key=key, status__in=("Success", "Failed", "TimedOut")
            )
            .values_list("status", flat=True)
            .first()
        )
        if reported:
            push_outcome_observed(push_operation_key=key, status=reported)
    return {"pushOperationKey": key, "status": answer.get("status"), "warnings": len(warnings)}, {}


def push_call_finished(operation: Operation, state: str, error: str) -> None:
    """The push call itself did not get through (refused, given up, cancelled)."""
    if state == OperationState.SUCCEEDED:
        return
    from bankfeeds.services import _set_aside, account_push_soon

    push = BankFeedPush.objects.filter(
        pk=operation.parameters["bankFeedPush"], status__in=IN_FLIGHT
    ).first()
    if push is None:
        return
    rows = BankTransaction.objects.filter(push=push, state=TransactionState.IN_PUSH)
    if state == OperationState.CANCELLED and push.sent_at is None:
        reason = "cancelled before it was sent"
        rows.update(state=TransactionState.WAITING, push=None)
    elif push.sent_at is not None and error.startswith("gave up"):
        # Codat may have taken the push though no answer came: sending it again could write
        # these transactions twice, so an operator decides (Codat's push history will tell).
        reason = f"no answer from Codat: {error}"
        _set_aside(
            rows,
            f"Push {push.pk} got no answer from Codat ({error}); check Codat's push history"
            " for this account before putting these back in the queue.",
        )
    else:
        reason = f"Codat refused the push: {error}"
        _set_aside(rows, reason)
    BankFeedPush.objects.filter(pk=push.pk).update(
        status=PushStatus.REFUSED, error=reason[:5000], completed_at=timezone.now()
    )
    account_push_soon(push.account_id)


def push_read_at_codat(client, operation: Operation) -> dict:
    push = _push(operation)
    return client.get_push_operation(
        str(push.account.connection.company.codat_id), str(push.push_operation_key)
    )


def push_read(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from bankfeeds.services import push_outcome_observed

    status = answer.get("status") or ""
    push_outcome_observed(
        push_operation_key=answer["pushOperationKey"], status=status, error=_push_error(answer)
    )
    return {"status": status}, {}


def _push_error(answer: dict) -> str:
    errors = (answer.get("validation") or {}).get("errors") or []
    parts = [answer.get("errorMessage") or ""] + [
        f"{e.get('itemId')}: {e.get('message')}" for e in errors if isinstance(e, dict)
    ]
    return "; ".join(p for p in parts if p)[:5000]
