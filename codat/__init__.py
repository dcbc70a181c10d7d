"""Codat API client: `CodatClient`, its typed errors and rate-limit figures.

Framework-free: nothing here imports Django or the portal's apps.
"""

from codat.client import DEFAULT_TIMEOUT, CodatClient
from codat.errors import (
    CodatBadRequest,
    CodatClientError,
    CodatConflict,
    CodatConnectionError,
    CodatError,
    CodatForbidden,
    CodatIdempotencyInFlight,
    CodatNotFound,
    CodatPaymentRequired,
    CodatRateLimited,
    CodatReadInProgress,
    CodatServerError,
    CodatTimeout,
    CodatTransportError,
    CodatUnauthorized,
    CodatUnreadableResponse,
)
from codat.operations import OPERATIONS, Operation
from codat.paging import iter_results
from codat.rate_limit_headers import RateLimit, parse_retry_after

__all__ = [
    "DEFAULT_TIMEOUT",
    "OPERATIONS",
    "CodatBadRequest",
    "CodatClient",
    "CodatClientError",
    "CodatConflict",
    "CodatConnectionError",
    "CodatError",
    "CodatForbidden",
    "CodatIdempotencyInFlight",
    "CodatNotFound",
    "CodatPaymentRequired",
    "CodatRateLimited",
    "CodatReadInProgress",
    "CodatServerError",
    "CodatTimeout",
    "CodatTransportError",
    "CodatUnauthorized",
    "CodatUnreadableResponse",
    "Operation",
    "RateLimit",
    "iter_results",
    "parse_retry_after",
]
