"""Every error of the API as application/problem+json (RFC 9457), naming the field and reason.

One handler for DRF's exceptions and the domain refusals of the services (a refused operation,
a consent error): views never build error bodies themselves.
"""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from consent.errors import ConsentError
from operations.planning import OperationRefused

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The code of a validation error about well-formed input that cannot be acted on (it names a
# product that does not exist, combines fields that do not go together): answered 422, while
# input the schema itself refuses is answered 400.
UNPROCESSABLE = "unprocessable"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ConflictWithIds(Conflict):
    """A conflict naming what it is about, in the problem's `conflicting_ids` member."""

    def __init__(self, detail: str, ids: list[str]):
        super().__init__(detail)
        self.extensions = {"conflicting_ids": ids}


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


def field_errors(detail, path: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {"field": "products.1", "reason": "..."}."""
    if isinstance(detail, dict):
        errors = []
        for name, value in detail.items():
            name = "" if name in ("non_field_errors", "__all__") else str(name)
            errors += field_errors(value, f"{path}.{name}" if path and name else path or name)
        return errors
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": path or None, "reason": str(item)} for item in detail]
        errors = []
        for index, item in enumerate(detail):
            if item:
                errors += field_errors(item, f"{path}.{index}" if path else str(index))
        return errors
    return [{"field": path or None, "reason": str(detail)}]


def problem_response(
    *, status_code: int, detail: str, errors: list | None = None, headers=None, extensions=None
) -> Response:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extensions or {})  # RFC 9457 extension members
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _leaf_codes(codes) -> set:
    if isinstance(codes, dict):
        return set().union(*(_leaf_codes(value) for value in codes.values()))
    if isinstance(codes, list):
        return set().union(*(_leaf_codes(value) for value in codes)) if codes else set()
    return {codes}


def _as_api_exception(exc):
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return exceptions.ValidationError(detail)
    if isinstance(exc, OperationRefused):
        return Conflict(str(exc))
    if isinstance(exc, ConsentError):
        return Conflict(str(exc))
    return exc


def problem_exception_handler(exc, context):
    # Imported here: rest_framework.views reads the API settings, whose parser imports this.
    from rest_framework.views import set_rollback

    exc = _as_api_exception(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handling (and the logs) take it
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait))
    status_code = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        if _leaf_codes(exc.get_codes()) == {UNPROCESSABLE}:
            status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        errors = field_errors(exc.detail)
        detail = "; ".join(
            f"{error['field']}: {error['reason']}" if error["field"] else error["reason"]
            for error in errors
        )
    else:
        errors = None
        detail = str(exc.detail)
    set_rollback()
    return problem_response(
        status_code=status_code,
        detail=detail,
        errors=errors,
        headers=headers,
        extensions=getattr(exc, "extensions", None),
    )
