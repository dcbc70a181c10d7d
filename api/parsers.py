"""JSON bodies whose text PostgreSQL can store.

JSON allows "\\u0000" and lone surrogates ("\\ud800") in strings; PostgreSQL's text and jsonb
refuse both, so such a body would fail at the database, after validation, as a 500. They are
refused here, for every endpoint at once, with the place in the body where they are.
"""

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from api.problems import UNPROCESSABLE


def _unstorable(value, path: str = "body") -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(key, path) or _unstorable(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, f"{path}.{index}")
            if found:
                return found
    return None


class StorableJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = _unstorable(data)
        if where:
            raise exceptions.ValidationError(
                {where: "Text may not hold NUL characters or lone surrogates."},
                code=UNPROCESSABLE,
            )
        return data
