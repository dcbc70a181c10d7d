"""Cursor paging for every list: stable under inserts, and no COUNT over big tables."""

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

from api.problems import UNPROCESSABLE

MAX_PAGE_SIZE = 200


class ApiCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"

    def get_page_size(self, request):
        # DRF ignores a bad page size and clamps a large one; the API says what is wrong instead.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {"page_size": f"Give a whole number from 1 to {self.max_page_size}."}
            )
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            # Any string is a well-formed cursor: one this API did not give out is a 422.
            raise exceptions.ValidationError(
                {"cursor": "Not a cursor this API gave out; use the next or previous link."},
                code=UNPROCESSABLE,
            ) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
        return parameters
