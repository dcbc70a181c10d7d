"""Typed errors raised by the Codat client.

Every error says whether it is transient (`is_transient`): the task layer retries transient ones
later and records the others as failed. The client itself never retries.

Hierarchy::

    CodatError
    ├── CodatTransportError          transient: the request may not have reached Codat
    │   ├── CodatConnectionError
    │   └── CodatTimeout
    ├── CodatUnreadableResponse      a 2xx/3xx whose body is not the JSON the operation returns
    ├── CodatClientError             4xx not listed below
    │   ├── CodatBadRequest          400
    │   ├── CodatReadInProgress      400/409 "a read is already running" (see the class)
    │   ├── CodatUnauthorized        401
    │   ├── CodatPaymentRequired     402
    │   ├── CodatForbidden           403
    │   ├── CodatNotFound            404
    │   ├── CodatConflict            409
    │   │   └── CodatIdempotencyInFlight  409 to an Idempotency-Key still running, transient
    │   └── CodatRateLimited         429, transient
    └── CodatServerError             5xx, transient
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from codat.rate_limit_headers import RateLimit


class CodatError(Exception):
    """Base of every error the client raises.

    The attributes mirror Codat's `ErrorMessage` body (`statusCode`, `service`, `error`,
    `correlationId`, `validation`, `canBeRetried`, `detailedErrorCode`); they are None when the
    error did not come with such a body (transport errors, non-JSON bodies).
    """

    is_transient = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        status_code: int | None = None,
        service: str | None = None,
        error: str | None = None,
        correlation_id: str | None = None,
        validation: dict | None = None,
        can_be_retried: str | None = None,
        detailed_error_code: int | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.headers = dict(headers or {})
        self.body = body
        self.status_code = status_code
        self.service = service
        self.error = error
        self.correlation_id = correlation_id
        self.validation = validation
        # A string in Codat's schema ("Unknown" in every example), not a boolean: never trust it
        # over the HTTP status when deciding to retry.
        self.can_be_retried = can_be_retried
        self.detailed_error_code = detailed_error_code
        self.rate_limit = rate_limit

    def __reduce__(self):
        # Keep every attribute when pickled (Celery results, multiprocessing): the default
        # reduction would rebuild the error from its message alone.
        return _restore, (type(self), str(self), self.__dict__)


def _restore(error_class: type[CodatError], message: str, state: dict) -> CodatError:
    error = error_class.__new__(error_class)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class CodatTransportError(CodatError):
    """The HTTP exchange itself failed; wraps a `requests` exception (see `__cause__`)."""

    is_transient = True


class CodatConnectionError(CodatTransportError):
    """Could not connect (refused, DNS, TLS, reset before a response)."""


class CodatTimeout(CodatTransportError):
    """Connect or read timeout.

    After a read timeout (`during_read`) Codat may have acted on the request: a retried write
    must be idempotent or checked first.
    """

    def __init__(self, message: str, *, during_read: bool = True) -> None:
        super().__init__(message)
        self.during_read = during_read


class CodatUnreadableResponse(CodatError):
    """A success or redirect response whose body is not what the operation returns.

    Not transient: the request may well have taken effect, so blindly repeating a write is
    unsafe; the caller decides.
    """


class CodatClientError(CodatError):
    """A 4xx answer without a more specific class below."""


class CodatBadRequest(CodatClientError):
    """400: malformed request or query (e.g. `Error parsing query - Malformed query.`)."""


class CodatReadInProgress(CodatClientError):
    """Codat refused to start a read because one is already running.

    Two documented shapes, both 400 with an ErrorMessage body:
    - refresh product data: "Data cannot be refreshed while a read operation is in progress..."
      Codat judges this per custom product: a read *of that product* is running (its schedule,
      its addition, an earlier refresh), whatever data types the refresh names; it ends with
      `{product}.read.completed`. A read of the same types for another reason does not refuse.
    - queue a data type: "DatasetAlreadyInProgressException: Cannot queue {dataType} sync for
      {companyId} as previous sync {id} is still in progress" (the docs do not give its HTTP
      status, so a 409, Codat's "not ready" code, is recognised too).
    The requested read is effectively happening: treat the request as satisfied, not failed.
    (For a product refresh naming a subset of types, the running read may be of other types;
    those stay stale until read, and freshness, not this error, shows it.)
    """


class CodatUnauthorized(CodatClientError):
    """401: wrong or missing API key."""


class CodatPaymentRequired(CodatClientError):
    """402: an account limit (company count, hourly sync on a Free plan, expired Free account)."""


class CodatForbidden(CodatClientError):
    """403: an outdated key, or a key for another client."""


class CodatNotFound(CodatClientError):
    """404: the company, connection, product or data type does not exist."""


class CodatConflict(CodatClientError):
    """409: not ready, or over a limit (e.g. all source accounts of a batch already exist)."""


class CodatIdempotencyInFlight(CodatConflict):
    """409 to a request whose Idempotency-Key belongs to a request Codat is still running.

    Transient: once the first request has finished, a retry with the same key gets its response.
    """

    is_transient = True


class CodatRateLimited(CodatClientError):
    """429: daily quota or per-company concurrency exceeded.

    `retry_after` is the number of seconds Codat asked to wait and `retry_at` the same moment
    as an aware UTC datetime, from `Retry-After` (delta-seconds or HTTP-date); both None when
    the header is missing or unreadable, in which case `rate_limit.reset_at` is the fallback.
    """

    is_transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        retry_at: datetime | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after
        self.retry_at = retry_at


class CodatServerError(CodatError):
    """5xx: Codat failed or is in maintenance (503)."""

    is_transient = True
