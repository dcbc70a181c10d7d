"""A thin client for Codat's REST API on `requests`.

One method per Codat operation the portal uses; `codat.operations.OPERATIONS` names the
operationId, HTTP method and path template behind each method, and the methods build their
requests from it.

Each call is made exactly once, with explicit connect and read timeouts and without following
redirects. Retrying is the task layer's job: it looks at `CodatError.is_transient`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from codat import errors
from codat.data_types import ALL_DATA_TYPES
from codat.operations import OPERATIONS, Operation
from codat.paging import iter_results
from codat.rate_limit_headers import RateLimit, parse_retry_after

DEFAULT_TIMEOUT = (3.05, 30.0)
DEFAULT_PAGE_SIZE = 100
MAX_BANK_TRANSACTIONS_PER_PUSH = 1000  # CreateBankTransactions.transactions maxItems

IDEMPOTENCY_HEADER = "Idempotency-Key"

# The two documented "a read is already running" 400s (see errors.CodatReadInProgress).
_READ_IN_PROGRESS_MARKERS = (
    "read operation is in progress",
    "DatasetAlreadyInProgressException",
)

_ERROR_BY_STATUS: dict[int, type[errors.CodatError]] = {
    400: errors.CodatBadRequest,
    401: errors.CodatUnauthorized,
    402: errors.CodatPaymentRequired,
    403: errors.CodatForbidden,
    404: errors.CodatNotFound,
    409: errors.CodatConflict,
}


class CodatClient:
    """Codat's API for one client (one API key).

    Methods return the parsed JSON body (dicts and lists, as Codat sends them), or None where
    Codat answers without a body (204, the 202 of a product refresh, the 200 of a connection
    delete). Failures raise a subclass of `codat.errors.CodatError`.

    `last_rate_limit` holds the X-Rate-Limit-* figures of the latest response that carried
    them (success or error). It is per client object, so share one client per thread.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a Codat API key is required")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # A plain Session: requests' default adapter makes no retries, and none is mounted here.
        self.session = session if session is not None else requests.Session()
        if session is None:
            # The environment's proxy and CA-bundle settings, read once for Codat's host rather
            # than on every call: requests scans os.environ per request when trust_env is on,
            # about a tenth of a worker's CPU per Codat call when the fleet runs at the ceiling.
            self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if ca_bundle:
                self.session.verify = ca_bundle
            self.session.trust_env = False
        # Codat wants the API key itself base64-encoded, not a "user:password" pair.
        self._authorization = "Basic " + base64.b64encode(api_key.encode()).decode("ascii")
        self.last_rate_limit: RateLimit | None = None

    def close(self) -> None:
        self.session.close()

    # Companies

    def list_companies(
        self,
        *,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        query: str | None = None,
        order_by: str | None = None,
        tags: str | None = None,
    ) -> dict:
        """One page of companies (`list-companies`). `tags` filters with =, != or ~."""
        params = _paging_params(page, page_size, query, order_by)
        if tags is not None:
            params["tags"] = tags
        return self._call("list_companies", params=params)

    def iter_companies(
        self,
        *,
        query: str | None = None,
        order_by: str | None = None,
        tags: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict]:
        """Every company matching `query`, across pages (`list-companies`)."""
        return iter_results(
            lambda page: self.list_companies(
                page=page, page_size=page_size, query=query, order_by=order_by, tags=tags
            )
        )

    def create_company(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        products: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        """Create a company (`create-company`).

        Codat strips characters outside `[A-Za-z0-9 -',&@.?!]` from `name` instead of
        rejecting them. `products` is sent only when given: Codat's docs accept it on create
        (and a client without default products must send it), but the OAS request schema
        `CompanyRequestBody` does not list it.

        With `idempotency_key` (a GUID, the same on every retry of one create) Codat answers a
        repeat within 90 minutes with the first response instead of creating a second company;
        a repeat while the first is still running raises `CodatIdempotencyInFlight`.
        """
        body = _company_body(name=name, description=description, tags=tags)
        if products is not None:
            body["products"] = list(products)
        return self._call("create_company", json_body=body, idempotency_key=idempotency_key)

    def get_company(self, company_id: str) -> dict:
        """One company (`get-company`)."""
        return self._call("get_company", companyId=company_id)

    def replace_company(
        self,
        company_id: str,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> dict:
        """Replace a company's name, description and tags (`replace-company`, PUT).

        Fields left out are cleared by Codat; use `update_company` to change only some.
        """
        body = _company_body(name=name, description=description, tags=tags)
        return self._call("replace_company", companyId=company_id, json_body=body)

    def update_company(
        self,
        company_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> dict:
        """Change only the given fields of a company (`update-company`, PATCH)."""
        body = _company_body(name=name, description=description, tags=tags)
        return self._call("update_company", companyId=company_id, json_body=body)

    def delete_company(self, company_id: str) -> None:
        """Delete a company with its connections and cached data, permanently (`delete-company`)."""
        self._call("delete_company", companyId=company_id, returns=None)

    # Products

    def add_product(self, company_id: str, product_identifier: str) -> None:
        """Add a product (`add-product`); with a Linked connection Codat starts its reads."""
        self._call(
            "add_product",
            companyId=company_id,
            productIdentifier=product_identifier,
            returns=None,
        )

    def remove_product(self, company_id: str, product_identifier: str) -> None:
        """Remove a product from a company (`remove-product`); connections stay."""
        self._call(
            "remove_product",
            companyId=company_id,
            productIdentifier=product_identifier,
            returns=None,
        )

    def refresh_product_data(
        self,
        company_id: str,
        product_identifier: str,
        *,
        data_types: Sequence[str] | None = None,
    ) -> None:
        """Queue a read of a custom product's data types (`refresh-product-data`, 202).

        Without `data_types` no body is sent and the product's scheduled refresh runs.
        Raises `CodatReadInProgress` while a read of this product is running (Codat judges it
        per custom product, whatever `data_types` names; reads for other products or schedules
        do not count), `CodatBadRequest` for a standard product or a data type the product
        lacks.
        """
        body = None if data_types is None else {"dataTypes": list(data_types)}
        self._call(
            "refresh_product_data",
            companyId=company_id,
            productIdentifier=product_identifier,
            json_body=body,
            returns=None,
        )

    # Connections

    def list_connections(
        self,
        company_id: str,
        *,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        query: str | None = None,
        order_by: str | None = None,
    ) -> dict:
        """One page of a company's connections (`list-connections`)."""
        params = _paging_params(page, page_size, query, order_by)
        return self._call("list_connections", companyId=company_id, params=params)

    def iter_connections(
        self,
        company_id: str,
        *,
        query: str | None = None,
        order_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict]:
        """Every connection of a company, across pages (`list-connections`)."""
        return iter_results(
            lambda page: self.list_connections(
                company_id, page=page, page_size=page_size, query=query, order_by=order_by
            )
        )

    def create_connection(self, company_id: str, platform_key: str) -> dict:
        """Create a PendingAuth connection to a platform (`create-connection`)."""
        body = {"platformKey": platform_key}
        return self._call("create_connection", companyId=company_id, json_body=body)

    def get_connection(self, company_id: str, connection_id: str) -> dict:
        """One connection (`get-connection`). For QBO bank feeds this renews the linkUrl OTP."""
        return self._call("get_connection", companyId=company_id, connectionId=connection_id)

    def delete_connection(self, company_id: str, connection_id: str) -> None:
        """Revoke and remove a connection, irreversibly (`delete-connection`; Codat says 200)."""
        self._call(
            "delete_connection",
            companyId=company_id,
            connectionId=connection_id,
            returns=None,
        )

    def unlink_connection(self, company_id: str, connection_id: str) -> dict:
        """Unlink a Linked connection, keeping its cached data (`unlink-connection`)."""
        return self._call(
            "unlink_connection",
            companyId=company_id,
            connectionId=connection_id,
            json_body={"status": "Unlinked"},
        )

    # Refreshing data

    def refresh_all_data(self, company_id: str) -> None:
        """Queue every fetchOnFirstLink data type of a company (`refresh-company-data`, 204)."""
        self._call("refresh_all_data", companyId=company_id, returns=None)

    def refresh_data_type(
        self, company_id: str, data_type: str, *, connection_id: str | None = None
    ) -> dict:
        """Queue one data type and return its PullOperation (`refresh-data-type`).

        Raises `CodatReadInProgress` if a read of that type is still running.
        """
        if data_type not in ALL_DATA_TYPES:
            raise ValueError(f"unknown Codat data type: {data_type!r}")
        params = {} if connection_id is None else {"connectionId": connection_id}
        return self._call(
            "refresh_data_type", companyId=company_id, dataType=data_type, params=params
        )

    def get_data_status(self, company_id: str) -> dict:
        """Status per data type, keyed by data type (`get-company-data-status`)."""
        return self._call("get_data_status", companyId=company_id)

    def list_pull_operations(
        self,
        company_id: str,
        *,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        query: str | None = None,
        order_by: str | None = None,
    ) -> dict:
        """One page of a company's datasets (`list-pull-operations`).

        `isCompleted` cannot be queried (400); filter failures with
        `status!=Complete&&status!=NotSupported`.
        """
        params = _paging_params(page, page_size, query, order_by)
        return self._call("list_pull_operations", companyId=company_id, params=params)

    def iter_pull_operations(
        self,
        company_id: str,
        *,
        query: str | None = None,
        order_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict]:
        """Every dataset of a company, across pages (`list-pull-operations`)."""
        return iter_results(
            lambda page: self.list_pull_operations(
                company_id, page=page, page_size=page_size, query=query, order_by=order_by
            )
        )

    def get_pull_operation(self, company_id: str, dataset_id: str) -> dict:
        """One dataset (`get-pull-operation`)."""
        return self._call("get_pull_operation", companyId=company_id, datasetId=dataset_id)

    def list_push_operations(
        self,
        company_id: str,
        *,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        query: str | None = None,
        order_by: str | None = None,
    ) -> dict:
        """One page of a company's write requests (`get-company-push-history`)."""
        params = _paging_params(page, page_size, query, order_by)
        return self._call("list_push_operations", companyId=company_id, params=params)

    def iter_push_operations(
        self,
        company_id: str,
        *,
        query: str | None = None,
        order_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict]:
        """Every write request of a company, across pages (`get-company-push-history`)."""
        return iter_results(
            lambda page: self.list_push_operations(
                company_id, page=page, page_size=page_size, query=query, order_by=order_by
            )
        )

    def get_push_operation(self, company_id: str, push_operation_key: str) -> dict:
        """One write request (`get-push-operation`): Pending, Success, Failed or TimedOut."""
        return self._call(
            "get_push_operation", companyId=company_id, pushOperationKey=push_operation_key
        )

    # Sync settings

    def get_client_sync_settings(self) -> dict:
        """Client-level sync settings (`get-profile-syncSettings`)."""
        return self._call("get_client_sync_settings")

    def set_client_sync_settings(
        self,
        client_id: str,
        settings: Sequence[Mapping[str, Any]],
        *,
        overrides_defaults: bool = True,
    ) -> None:
        """Replace the client-level sync settings (`update-profile-syncSettings`, 204).

        Each setting needs `dataType`, `fetchOnFirstLink`, `syncSchedule` (hours) and
        `syncOrder`. An hourly schedule on a Free plan raises `CodatPaymentRequired`.
        """
        body = {
            "clientId": client_id,
            "settings": [dict(setting) for setting in settings],
            "overridesDefaults": overrides_defaults,
        }
        self._call("set_client_sync_settings", json_body=body, returns=None)

    def get_company_sync_settings(self, company_id: str) -> dict:
        """A company's sync settings (`get-company-syncSettings`)."""
        return self._call("get_company_sync_settings", companyId=company_id)

    def set_company_sync_settings(
        self,
        company_id: str,
        settings: Sequence[Mapping[str, Any]],
        *,
        overrides_defaults: bool = True,
    ) -> None:
        """Replace a company's sync settings (`set-company-syncSettings`, 204)."""
        body = {
            "companyId": company_id,
            "settings": [dict(setting) for setting in settings],
            "overridesDefaults": overrides_defaults,
        }
        self._call(
            "set_company_sync_settings",
            companyId=company_id,
            json_body=body,
            returns=None,
        )

    # Webhook consumers

    def list_webhook_consumers(self) -> dict:
        """All webhook consumers, `{"results": [...]}`, not paged (`list-webhook-consumers`)."""
        return self._call("list_webhook_consumers")

    def create_webhook_consumer(
        self,
        url: str,
        event_types: Sequence[str],
        *,
        disabled: bool | None = None,
        company_tags: Sequence[str] | None = None,
    ) -> dict:
        """Register a webhook consumer (`create-webhook-consumer`, 201).

        `company_tags` are `key:value` strings; an event is delivered if any one matches.
        The signing secret is not returned by the API; it is copied from Codat's Portal.
        """
        body: dict[str, Any] = {"url": url, "eventTypes": list(event_types)}
        if disabled is not None:
            body["disabled"] = disabled
        if company_tags is not None:
            body["companyTags"] = list(company_tags)
        return self._call("create_webhook_consumer", json_body=body)

    def delete_webhook_consumer(self, webhook_id: str) -> None:
        """Delete a webhook consumer (`delete-webhook-consumer`, 204)."""
        self._call("delete_webhook_consumer", webhookId=webhook_id, returns=None)

    # Bank feeds (Codat-Bank-Feeds.yaml)

    def create_source_account(
        self, company_id: str, connection_id: str, source_account: Mapping[str, Any]
    ) -> dict:
        """Create one bank-feed source account (`create-source-account`).

        v2 accounts (integrations built after 2024-08-01) require `id`, `accountName`,
        `accountType`, `accountNumber`, `currency` and `balance`.
        """
        return self._call(
            "create_source_account",
            companyId=company_id,
            connectionId=connection_id,
            json_body=dict(source_account),
        )

    def create_source_accounts(
        self,
        company_id: str,
        connection_id: str,
        source_accounts: Sequence[Mapping[str, Any]],
    ) -> list:
        """Create several source accounts (`create-batch-source-account`).

        Codat answers 201, or 207 when only some were created: each item of the returned list
        has its own `result.statusCode` and `result.error`. All failing gives `CodatConflict`.
        """
        return self._call(
            "create_source_accounts",
            companyId=company_id,
            connectionId=connection_id,
            json_body=[dict(account) for account in source_accounts],
            returns=list,
        )

    def list_source_accounts(self, company_id: str, connection_id: str) -> list:
        """A connection's source accounts, not paged (`list-source-accounts`)."""
        return self._call(
            "list_source_accounts",
            companyId=company_id,
            connectionId=connection_id,
            returns=list,
        )

    def update_source_account(
        self,
        company_id: str,
        connection_id: str,
        account_id: str,
        source_account: Mapping[str, Any],
    ) -> dict:
        """Update a source account (`update-source-account`).

        The OAS body is the v1 `SourceAccount` (no extra properties allowed), even for v2
        accounts.
        """
        return self._call(
            "update_source_account",
            companyId=company_id,
            connectionId=connection_id,
            accountId=account_id,
            json_body=dict(source_account),
        )

    def delete_source_account(self, company_id: str, connection_id: str, account_id: str) -> None:
        """Delete a source account, disabling its feed (`delete-source-account`, 204)."""
        self._call(
            "delete_source_account",
            companyId=company_id,
            connectionId=connection_id,
            accountId=account_id,
            returns=None,
        )

    def get_bank_account_mapping(self, company_id: str, connection_id: str) -> list:
        """Source accounts with their target account options (`get-bank-account-mapping`)."""
        return self._call(
            "get_bank_account_mapping",
            companyId=company_id,
            connectionId=connection_id,
            returns=list,
        )

    def set_bank_account_mapping(
        self,
        company_id: str,
        connection_id: str,
        source_account_id: str,
        *,
        target_account_id: str | None = None,
        feed_start_date: str | None = None,
    ) -> dict:
        """Map one source account to a target account (`create-bank-account-mapping`).

        Without `target_account_id` Codat creates a new target account (status `connecting`).
        A failed mapping still answers 200, with `status: Failed` and an `error` in the body.
        """
        body: dict[str, Any] = {"sourceAccountId": source_account_id}
        if target_account_id is not None:
            body["targetAccountId"] = target_account_id
        if feed_start_date is not None:
            body["feedStartDate"] = feed_start_date
        return self._call(
            "set_bank_account_mapping",
            companyId=company_id,
            connectionId=connection_id,
            json_body=body,
        )

    def push_bank_transactions(
        self,
        company_id: str,
        connection_id: str,
        account_id: str,
        transactions: Sequence[Mapping[str, Any]],
        *,
        timeout_in_minutes: int | None = None,
        allow_sync_on_push_complete: bool | None = None,
    ) -> dict:
        """Push up to 1000 bank transactions to one account (`create-bank-transactions`).

        Returns the PushOperation (status `Pending`); follow it with `get_push_operation`.
        `date` is a local date-time: Codat ignores any offset.
        """
        if len(transactions) > MAX_BANK_TRANSACTIONS_PER_PUSH:
            raise ValueError(
                f"Codat accepts at most {MAX_BANK_TRANSACTIONS_PER_PUSH} transactions per push,"
                f" got {len(transactions)}"
            )
        params: dict[str, Any] = {}
        if timeout_in_minutes is not None:
            params["timeoutInMinutes"] = timeout_in_minutes
        if allow_sync_on_push_complete is not None:
            params["allowSyncOnPushComplete"] = "true" if allow_sync_on_push_complete else "false"
        body = {"accountId": account_id, "transactions": [dict(t) for t in transactions]}
        return self._call(
            "push_bank_transactions",
            companyId=company_id,
            connectionId=connection_id,
            accountId=account_id,
            params=params,
            json_body=body,
        )

    # Plumbing

    def _call(
        self,
        method_name: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        returns: type | None = dict,
        idempotency_key: str | None = None,
        **path_params: str,
    ) -> Any:
        operation = OPERATIONS[method_name]
        path = operation.path.format(
            **{name: quote(str(value), safe="") for name, value in path_params.items()}
        )
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if idempotency_key is not None:
            # Codat honours it on POST and PATCH (docs: using-the-api/write-data/idempotency).
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        try:
            response = self.session.request(
                operation.method,
                self.base_url + path,
                params=params or None,
                json=json_body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise errors.CodatTimeout(
                f"{operation.operation_id}: {exc}",
                during_read=not isinstance(exc, requests.ConnectTimeout),
            ) from exc
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise errors.CodatConnectionError(f"{operation.operation_id}: {exc}") from exc
        except requests.RequestException as exc:
            # InvalidURL, MissingSchema and the like: a configuration error, not transient.
            raise errors.CodatError(f"{operation.operation_id}: {exc}") from exc

        rate_limit = RateLimit.from_headers(response.headers)
        if rate_limit is not None:
            self.last_rate_limit = rate_limit

        if not 200 <= response.status_code < 300:
            raise _error_from_response(operation, response, rate_limit)
        if returns is None:
            return None
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, returns):
            raise errors.CodatUnreadableResponse(
                f"{operation.operation_id}: HTTP {response.status_code} body is not a JSON"
                f" {returns.__name__}",
                http_status=response.status_code,
                headers=response.headers,
                body=response.text[:2000],
                rate_limit=rate_limit,
            )
        return body


def _paging_params(
    page: int, page_size: int, query: str | None, order_by: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"page": page, "pageSize": page_size}
    if query is not None:
        params["query"] = query
    if order_by is not None:
        params["orderBy"] = order_by
    return params


def _company_body(
    *, name: str | None, description: str | None, tags: Mapping[str, str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if tags is not None:
        body["tags"] = dict(tags)
    return body


def _error_from_response(
    operation: Operation, response: requests.Response, rate_limit: RateLimit | None
) -> errors.CodatError:
    status = response.status_code
    try:
        body = json.loads(response.content)
    except ValueError:
        body = response.text[:2000]
    message_fields = body if isinstance(body, dict) else {}
    error_text = message_fields.get("error")
    fields = {
        "http_status": status,
        "headers": response.headers,
        "body": body,
        "status_code": message_fields.get("statusCode"),
        "service": message_fields.get("service"),
        "error": error_text,
        "correlation_id": message_fields.get("correlationId"),
        "validation": message_fields.get("validation"),
        "can_be_retried": message_fields.get("canBeRetried"),
        "detailed_error_code": message_fields.get("detailedErrorCode"),
        "rate_limit": rate_limit,
    }
    message = f"{operation.operation_id}: HTTP {status}"
    if error_text:
        message += f": {error_text}"

    if 300 <= status < 400:
        # Redirects are never followed: the Authorization header must not travel elsewhere.
        location = response.headers.get("Location")
        return errors.CodatUnreadableResponse(f"{message} (redirect to {location})", **fields)
    if status >= 500:
        return errors.CodatServerError(message, **fields)
    if status in (400, 409) and any(
        marker in str(error_text or "") for marker in _READ_IN_PROGRESS_MARKERS
    ):
        return errors.CodatReadInProgress(message, **fields)
    if status == 409 and IDEMPOTENCY_HEADER in response.request.headers:
        return errors.CodatIdempotencyInFlight(message, **fields)
    if status == 429:
        retry_after, retry_at = parse_retry_after(response.headers.get("Retry-After"))
        return errors.CodatRateLimited(
            message, retry_after=retry_after, retry_at=retry_at, **fields
        )
    error_class = _ERROR_BY_STATUS.get(status, errors.CodatClientError)
    return error_class(message, **fields)
