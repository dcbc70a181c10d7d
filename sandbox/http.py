"""Helpers every handler uses: the sandbox object, JSON bodies, lookups that 404 like Codat."""

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.errors import ApiError, bad_request, company_not_found, connection_not_found

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

_MISSING = object()


def sandbox_of(request: Request) -> "Sandbox":
    return request.app.state.sandbox


async def json_body(request: Request, *, optional: bool = False, expect=dict) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise bad_request("body", "a JSON request body is required")
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("body", "the request body is not valid JSON") from None
    if expect is not None and not isinstance(body, expect):
        kind = "an object" if expect is dict else "an array"
        raise bad_request("body", f"must be a JSON {kind}")
    return body


def require_company(sb: "Sandbox", company_id: str) -> dict:
    company = sb.store.get("company", company_id)
    if company is None:
        raise company_not_found(company_id)
    return company


def require_connection(sb: "Sandbox", company: dict, connection_id: str) -> dict:
    connection = sb.store.get("connection", connection_id)
    if connection is None or connection["_companyId"] != company["id"]:
        raise connection_not_found(connection_id)
    return connection


def json_response(body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code)


def empty(status_code: int) -> Response:
    return Response(status_code=status_code)


def string_field(body: dict, name: str, *, required: bool = False, max_length: int | None = None):
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad_request(name, "is required")
        return None
    if not isinstance(value, str):
        raise bad_request(name, "must be a string")
    if max_length is not None and len(value) > max_length:
        raise bad_request(name, f"must be at most {max_length} characters")
    return value


def bool_field(body: dict, name: str, *, required: bool = False):
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad_request(name, "is required")
        return None
    if not isinstance(value, bool):
        raise bad_request(name, "must be true or false")
    return value


def int_field(body: dict, name: str, *, required: bool = False):
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad_request(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(name, "must be an integer")
    return value


def not_found(message: str, service: str = "PublicApi") -> ApiError:
    return ApiError(404, message, service=service)
