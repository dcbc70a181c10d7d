"""Bank Feeds (Codat-Bank-Feeds.yaml): source accounts, account mapping, bank transaction pushes.

Source accounts come in two shapes. v2 (every v2 field given) is always rendered with
`routingInfo`, so that it matches only `SourceAccountV2` in the documents' `oneOf`; anything else is
v1. A list is rendered v2 only when every account in it is v2.
"""

import secrets
from datetime import UTC, datetime

from starlette.requests import Request

from sandbox.errors import ApiError, bad_request
from sandbox.http import (
    empty,
    json_body,
    json_response,
    not_found,
    require_company,
    require_connection,
    sandbox_of,
)
from sandbox.query import int32_param
from sandbox.store import public

V2_ACCOUNT_TYPES = ("checking", "savings", "loan", "creditCard", "prepaidCard")
V1_FIELDS = (
    "id",
    "accountName",
    "accountType",
    "accountNumber",
    "sortCode",
    "currency",
    "balance",
    "modifiedDate",
    "status",
    "feedStartDate",
)
V2_FIELDS = (*V1_FIELDS, "routingInfo", "accountInfo")
WRITABLE_FIELDS = (
    "accountName",
    "accountType",
    "accountNumber",
    "sortCode",
    "currency",
    "balance",
    "modifiedDate",
    "routingInfo",
    "accountInfo",
)
MAX_TRANSACTIONS = 1000
TRANSACTION_TYPES = (
    "Unknown",
    "Credit",
    "Debit",
    "Int",
    "Div",
    "Fee",
    "SerChg",
    "Dep",
    "Atm",
    "Pos",
    "Xfer",
    "Check",
    "Payment",
    "Cash",
    "DirectDep",
    "DirectDebit",
    "RepeatPmt",
    "Other",
)
CONNECTING_SECONDS = 5
# Platforms that need each transaction's running balance (QuickBooks Online does not).
BALANCE_REQUIRED_PLATFORMS = ("gbol", "olpr", "akxx", "fbrh")
# How far before the feed start date a platform takes a transaction (QuickBooks Online: 7 days).
BACKDATING_SECONDS = {"hcws": 7 * 86400}


# QuickBooks Online Bank Feeds' linkUrl carries a one-time code that lasts an hour; reading the
# connection again (GET) issues a fresh one.
ONE_TIME_CODE_PLATFORM = "hcws"
ONE_TIME_CODE_SECONDS = 3600


def link_code_issue(connection: dict, at: float) -> None:
    """Give a QuickBooks Online bank-feeds connection a fresh one-time code in its linkUrl."""
    if connection.get("integrationKey") != ONE_TIME_CODE_PLATFORM:
        return
    code = secrets.token_urlsafe(16)
    base = connection["linkUrl"].split("?", 1)[0]
    connection["linkUrl"] = f"{base}?otp={code}"
    connection["_linkCode"] = code
    connection["_linkCodeExpiresAt"] = at + ONE_TIME_CODE_SECONDS


def link_code_refused(connection: dict, code: str | None, now: float) -> bool:
    """Whether a QuickBooks Online bank-feeds link is opened without a live code."""
    if connection.get("integrationKey") != ONE_TIME_CODE_PLATFORM:
        return False
    return code != connection.get("_linkCode") or now >= connection.get("_linkCodeExpiresAt", 0)


def _key(connection_id: str, account_id: str) -> str:
    return f"{connection_id}:{account_id}"


def _is_v2(body: dict) -> bool:
    return (
        all(
            isinstance(body.get(f), str) for f in ("id", "accountName", "accountNumber", "currency")
        )
        and body.get("accountType") in V2_ACCOUNT_TYPES
        and isinstance(body.get("balance"), int | float)
        and not isinstance(body.get("balance"), bool)
    )


def source_account_body(account: dict, version: str | None = None) -> dict:
    version = version or account["_version"]
    fields = V2_FIELDS if version == "v2" else V1_FIELDS
    body = {f: account[f] for f in fields if account.get(f) is not None}
    if version == "v2" and "routingInfo" not in body:
        body["routingInfo"] = {"type": "bankcode"}
    return body


def _validate_account(body, *, index: str = "") -> dict:
    if not isinstance(body, dict):
        raise bad_request(f"{index}body", "must be an object")
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise bad_request(f"{index}id", "is required and must be a string")
    for name in ("accountName", "accountType", "accountNumber", "sortCode", "currency"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"{index}{name}", "must be a string")
    balance = body.get("balance")
    if balance is not None and (isinstance(balance, bool) or not isinstance(balance, int | float)):
        raise bad_request(f"{index}balance", "must be a number")
    return body


def _new_account(sb, company: dict, connection: dict, body: dict) -> dict:
    account = {f: body.get(f) for f in ("id", *WRITABLE_FIELDS)}
    account.update(
        status="pending",
        _version="v2" if _is_v2(body) else "v1",
        _companyId=company["id"],
        _connectionId=connection["id"],
        _key=_key(connection["id"], body["id"]),
    )
    sb.store.put("source_account", account["_key"], account)
    return account


def _accounts(sb, connection: dict) -> list[dict]:
    return [a for a in sb.store.all("source_account") if a["_connectionId"] == connection["id"]]


def _context(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    connection = require_connection(sb, company, request.path_params["connectionId"])
    return sb, company, connection


def _require_account(sb, connection: dict, account_id: str) -> dict:
    account = sb.store.get("source_account", _key(connection["id"], account_id))
    if account is None:
        raise not_found(f"Source account {account_id} not found")
    return account


async def list_source_accounts(request: Request):
    sb, _, connection = _context(request)
    accounts = _accounts(sb, connection)
    version = "v2" if accounts and all(a["_version"] == "v2" for a in accounts) else "v1"
    return json_response([source_account_body(a, version) for a in accounts])


async def create_source_account(request: Request):
    sb, company, connection = _context(request)
    body = _validate_account(await json_body(request))
    if sb.store.get("source_account", _key(connection["id"], body["id"])) is not None:
        raise bad_request("id", "A bank account already exists with the same Id")
    return json_response(source_account_body(_new_account(sb, company, connection, body)))


async def create_source_accounts_batch(request: Request):
    sb, company, connection = _context(request)
    items = await json_body(request, expect=list)
    results, created = [], 0
    for index, item in enumerate(items):
        account_id = item.get("id") if isinstance(item, dict) else None
        try:
            _validate_account(item, index=f"[{index}].")
            if sb.store.get("source_account", _key(connection["id"], item["id"])) is not None:
                raise ApiError(409, "A bank account already exists with the same Id")
        except ApiError as exc:
            results.append(
                {
                    "sourceAccountId": str(account_id or ""),
                    "result": {"statusCode": str(exc.status_code), "error": exc.error},
                }
            )
            continue
        account = _new_account(sb, company, connection, item)
        created += 1
        results.append(
            {
                "sourceAccountId": account["id"],
                "result": {"statusCode": 200, "account": source_account_body(account)},
            }
        )
    status = 201 if created == len(items) else (207 if created else 409)
    return json_response(results, status)


async def update_source_account(request: Request):
    sb, _, connection = _context(request)
    account = _require_account(sb, connection, request.path_params["accountId"])
    body = _validate_account(await json_body(request))
    unknown = sorted(set(body) - set(V1_FIELDS))
    if unknown:
        raise bad_request(unknown[0], "is not a source account field")
    if body["id"] != account["id"]:
        raise bad_request("id", "must match the accountId in the path")
    for name in ("accountName", "accountType", "accountNumber", "sortCode", "currency", "balance"):
        if name in body:
            account[name] = body[name]
    if "modifiedDate" in body:
        account["modifiedDate"] = body["modifiedDate"]
    if account["_version"] == "v2" and not _is_v2(account):
        account["_version"] = "v1"
    sb.store.put("source_account", account["_key"], account)
    return json_response(source_account_body(account, "v1"))


async def delete_source_account(request: Request):
    sb, _, connection = _context(request)
    account = _require_account(sb, connection, request.path_params["accountId"])
    sb.store.delete("source_account", account["_key"])
    if account["status"] == "connected":
        account["status"] = "disconnected"
        sb.bank_feed_event("bankFeeds.sourceAccount.disconnected", account, sb.clock.now())
    return empty(204)


def _target_options(account: dict) -> list[dict]:
    currency = account.get("currency") or "GBP"
    return [
        {
            "id": f"target-{currency.lower()}-{number}",
            "name": f"Business {name} ({currency})",
            "accountNumber": f"0000{number}",
            "balance": 0,
        }
        for number, name in ((1, "Current Account"), (2, "Savings Account"))
    ]


async def get_mapping(request: Request):
    sb, _, connection = _context(request)
    mappings = []
    for account in _accounts(sb, connection):
        mapping = {
            "sourceAccountId": account["id"],
            "sourceAccountName": account.get("accountName"),
            "sourceAccountNumber": account.get("accountNumber"),
            "sourceBalance": account.get("balance"),
            "sourceCurrency": account.get("currency"),
            "targetAccountId": account.get("_targetAccountId"),
            "targetAccountName": account.get("_targetAccountName"),
            "status": account["status"],
            "feedStartDate": account.get("feedStartDate"),
            "targetAccountOptions": _target_options(account),
        }
        mappings.append(public(mapping))
    return json_response(mappings)


async def create_mapping(request: Request):
    sb, _, connection = _context(request)
    body = await json_body(request)
    source_id = body.get("sourceAccountId")
    if not isinstance(source_id, str):
        raise bad_request("sourceAccountId", "is required and must be a string")
    target_id = body.get("targetAccountId")
    if target_id is not None and not isinstance(target_id, str):
        raise bad_request("targetAccountId", "must be a string")
    feed_start = body.get("feedStartDate")
    if feed_start is not None and not isinstance(feed_start, str):
        raise bad_request("feedStartDate", "must be a date-time string")
    account = _require_account(sb, connection, source_id)
    at = sb.clock.now()
    if target_id is not None:
        for other in _accounts(sb, connection):
            if other["id"] != account["id"] and other.get("_targetAccountId") == target_id:
                return json_response(
                    {
                        "sourceAccountId": source_id,
                        "targetAccountId": target_id,
                        "status": "Failed",
                        "error": "A feed connection already exists to this account",
                    }
                )
        names = {o["id"]: o["name"] for o in _target_options(account)}
        account.update(
            status="connected",
            feedStartDate=feed_start or account.get("feedStartDate"),
            _targetAccountId=target_id,
            _targetAccountName=names.get(target_id, target_id),
        )
        sb.store.put("source_account", account["_key"], account)
        sb.bank_feed_event("bankFeeds.sourceAccount.connected", account, at)
        return json_response(
            {"sourceAccountId": source_id, "targetAccountId": target_id, "status": "connected"}
        )
    # No target: the platform creates a new account, which takes a moment to connect.
    account.update(
        status="connecting",
        feedStartDate=feed_start or account.get("feedStartDate"),
        _targetAccountId=f"new-{account['id']}",
        _targetAccountName=account.get("accountName") or account["id"],
        _connectAt=at + CONNECTING_SECONDS,
    )
    sb.store.put("source_account", account["_key"], account)
    sb.engine.schedule(account["_connectAt"], "source_account", account["_key"])
    return json_response({"sourceAccountId": source_id, "status": "connecting"})


def _local_timestamp(value) -> float | None:
    """A transaction date as Codat reads it: the local date-time as written, any offset ignored."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()


def _feed_start(account: dict) -> float | None:
    value = account.get("feedStartDate")
    return _local_timestamp(value) if isinstance(value, str) else None


def _rule_errors(account: dict, connection: dict, dated: list[tuple[str, float]], now: float):
    """Why Codat fails this push though it is well formed: order, the account's latest
    transaction, the future, the platform's back-dating limit."""
    errors = []

    def error(item_id: str, message: str) -> None:
        errors.append({"itemId": item_id, "message": message, "validatorName": "BankFeedRules"})

    latest = account.get("_latestTransactionAt")
    earliest = None
    limit = BACKDATING_SECONDS.get(connection.get("integrationKey"))
    if limit is not None and _feed_start(account) is not None:
        earliest = _feed_start(account) - limit
    previous = None
    for item_id, at in dated:
        if previous is not None and at < previous:
            error(item_id, "Transactions must be in chronological order")
        previous = at
        if latest is not None and at < latest:
            error(item_id, "The transaction is older than the account's latest transaction")
        if at > now:
            error(item_id, "The transaction is dated in the future")
        if earliest is not None and at < earliest:
            error(item_id, "The transaction is dated too far before the feed start date")
    return errors


async def create_bank_transactions(request: Request):
    sb, company, connection = _context(request)
    account = _require_account(sb, connection, request.path_params["accountId"])
    timeout = int32_param(request.query_params, "timeoutInMinutes", None)
    body = await json_body(request)
    if not isinstance(body.get("accountId"), str):
        raise bad_request("accountId", "is required and must be a string")
    transactions = body.get("transactions")
    if not isinstance(transactions, list):
        raise bad_request("transactions", "is required and must be an array")
    if len(transactions) > MAX_TRANSACTIONS:
        raise bad_request("transactions", f"at most {MAX_TRANSACTIONS} transactions per request")
    warnings, record_ids, dated = [], [], []
    balance_required = connection.get("integrationKey") in BALANCE_REQUIRED_PLATFORMS
    for index, item in enumerate(transactions):
        field = f"transactions[{index}]"
        if not isinstance(item, dict):
            raise bad_request(field, "must be an object")
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise bad_request(f"{field}.id", "is required and must be a string")
        at = _local_timestamp(item.get("date"))
        if at is None:
            raise bad_request(f"{field}.date", "is required and must be a date-time")
        dated.append((item["id"], at))
        amount = item.get("amount")
        if amount is None:
            raise bad_request(f"{field}.amount", "is required")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise bad_request(f"{field}.amount", "must be a number")
        balance = item.get("balance")
        if balance is None and balance_required:
            raise bad_request(f"{field}.balance", f"is required for {connection['platformName']}")
        if balance is not None and (
            isinstance(balance, bool) or not isinstance(balance, int | float)
        ):
            raise bad_request(f"{field}.balance", "must be a number")
        kind = item.get("transactionType")
        if kind is not None and kind not in TRANSACTION_TYPES:
            raise bad_request(
                f"{field}.transactionType", f"must be one of {', '.join(TRANSACTION_TYPES)}"
            )
        if (kind == "Debit" and (amount or 0) > 0) or (kind == "Credit" and (amount or 0) < 0):
            warnings.append(
                {
                    "itemId": str(item.get("id")),
                    "message": f"The sign of the amount does not match transactionType {kind}",
                    "validatorName": "TransactionTypeSign",
                }
            )
        record_ids.append(str(item.get("id") or index))
    now = sb.clock.now()
    rule_errors = _rule_errors(account, connection, dated, now)
    valid = (
        account["status"] == "connected" and body["accountId"] == account["id"] and not rule_errors
    )
    operation = sb.engine.create_push(
        company,
        connection,
        "bankTransactions",
        body,
        at=sb.clock.now(),
        timeout_minutes=timeout,
        record_ids=record_ids,
        valid=valid,
    )
    operation["validation"]["warnings"] = warnings
    if valid and operation["_outcome"] == "Success" and dated:
        # The push will land: later pushes may not go back before its latest transaction.
        account["_latestTransactionAt"] = max(
            account.get("_latestTransactionAt") or dated[-1][1], max(at for _, at in dated)
        )
        sb.store.put("source_account", account["_key"], account)
    if rule_errors:
        operation["_validationErrors"] = rule_errors
    elif not valid:
        operation["_validationErrors"] = [
            {
                "itemId": account["id"],
                "message": "The source account is not connected to a target account"
                if account["status"] != "connected"
                else "accountId in the body does not match the account in the path",
                "validatorName": "BankFeedAccount",
            }
        ]
    sb.store.put("push", operation["pushOperationKey"], operation)
    return json_response(public(operation))
