"""Codat's ErrorMessage body and the exception that carries it out of a handler."""

import uuid

from starlette.responses import JSONResponse

DEFAULT_SERVICE = "PublicApi"


class ApiError(Exception):
    """An error answered with Codat's ErrorMessage shape."""

    def __init__(
        self,
        status_code: int,
        error: str,
        *,
        service: str = DEFAULT_SERVICE,
        validation_errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.service = service
        self.validation_errors = validation_errors
        self.headers = headers or {}


def error_body(
    status_code: int, error: str, *, service: str = DEFAULT_SERVICE, validation_errors=None
) -> dict:
    body = {
        "statusCode": status_code,
        "service": service,
        "error": error,
        "correlationId": uuid.uuid4().hex,
        "canBeRetried": "Unknown",
        "detailedErrorCode": 0,
    }
    if validation_errors:
        body["validation"] = {"errors": validation_errors, "warnings": []}
    return body


def error_response(exc: ApiError) -> JSONResponse:
    body = error_body(
        exc.status_code, exc.error, service=exc.service, validation_errors=exc.validation_errors
    )
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def bad_request(field: str, reason: str, *, service: str = DEFAULT_SERVICE) -> ApiError:
    """A 400 that names the field and the reason, in the message and in `validation.errors`."""
    return ApiError(
        400,
        f"Error processing request - not valid. {field}: {reason}",
        service=service,
        validation_errors=[{"itemId": field, "message": reason, "validatorName": field}],
    )


def free_plan_limit(error: str) -> ApiError:
    """A 402 for what Codat's Free plan does not allow."""
    return ApiError(402, error, service="ClientsApi")


def company_not_found(company_id: str) -> ApiError:
    return ApiError(404, f"No company was found with ID {company_id}", service="ClientsApi")


def connection_not_found(connection_id: str) -> ApiError:
    return ApiError(404, f"Data connection {connection_id} not found")


def malformed_query(service: str = "ClientsApi") -> ApiError:
    return ApiError(400, "Error parsing query - Malformed query.", service=service)
