"""Codat's query language, ordering and paging for list endpoints.

Grammar: terms `property<op>value` with ops `= != ~ > < >= <=`, joined with `&&` and `||`
(`&&` binds tighter), grouped with `{}`. Strings compare case-insensitively; `~` is "contains".
"""

import re
from collections.abc import Callable
from urllib.parse import urlencode

from sandbox.errors import ApiError, bad_request, malformed_query

MAX_QUERY_LENGTH = 2048
# `page`, `pageSize` and `timeoutInMinutes` are `format: int32` in Codat's documents.
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
MAX_PAGE_SIZE = 5000
DEFAULT_PAGE_SIZE = 100

_TOKEN = re.compile(r"\s*(\{|\}|&&|\|\|)")
_TERM = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(!=|>=|<=|=|~|>|<)\s*(.*?)\s*$", re.S)
# A value never starts with an operator character (`name === x`, `name =< 3`) and never holds a
# brace, which only groups terms (`name = {`): Codat answers both as a malformed query.
_MALFORMED_VALUE = re.compile(r"^[=!<>~]|[{}]")

Predicate = Callable[[dict], bool]


class _Parser:
    def __init__(self, text: str, resolve: Callable[[str], None]):
        self.text = text
        self.pos = 0
        self.resolve = resolve

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.text) and self.text[self.pos :].strip():
            raise ValueError("trailing input")
        return predicate

    def _peek(self) -> str | None:
        match = _TOKEN.match(self.text, self.pos)
        return match.group(1) if match else None

    def _take(self, token: str) -> None:
        match = _TOKEN.match(self.text, self.pos)
        if not match or match.group(1) != token:
            raise ValueError(f"expected {token}")
        self.pos = match.end()

    def _or(self) -> Predicate:
        terms = [self._and()]
        while self._peek() == "||":
            self._take("||")
            terms.append(self._and())
        if len(terms) == 1:
            return terms[0]
        return lambda record: any(term(record) for term in terms)

    def _and(self) -> Predicate:
        terms = [self._atom()]
        while self._peek() == "&&":
            self._take("&&")
            terms.append(self._atom())
        if len(terms) == 1:
            return terms[0]
        return lambda record: all(term(record) for term in terms)

    def _atom(self) -> Predicate:
        if self._peek() == "{":
            self._take("{")
            inner = self._or()
            self._take("}")
            return inner
        # Find where the term ends: the next &&, || or }.
        rest = self.text[self.pos :]
        cut = len(rest)
        for marker in ("&&", "||", "}"):
            index = rest.find(marker)
            if index != -1:
                cut = min(cut, index)
        term_text = rest[:cut]
        self.pos += cut
        match = _TERM.match(term_text)
        if not match or not match.group(3) or _MALFORMED_VALUE.search(match.group(3)):
            raise ValueError("bad term")
        prop, op, raw_value = match.groups()
        self.resolve(prop)
        value = raw_value.strip().strip("'\"")
        return _comparison(prop, op, value)


def _lookup(record: dict, prop: str):
    current = record
    for part in prop.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _comparison(prop: str, op: str, value: str) -> Predicate:
    def test(record: dict) -> bool:
        actual = _lookup(record, prop)
        if actual is None:
            # Nulls cannot be queried: a term on a missing value matches only "!=".
            return op == "!="
        if isinstance(actual, bool):
            actual = "true" if actual else "false"
        if op == "~":
            return value.lower() in str(actual).lower()
        left, right = _as_number(actual), _as_number(value)
        if left is None or right is None:
            left, right = str(actual).lower(), value.lower()
        if op == "=":
            return left == right
        if op == "!=":
            return left != right
        if type(left) is not type(right):
            return False
        return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]

    return test


def compile_query(
    text: str | None, known_properties: set[str] | None, entity: str, service: str
) -> Predicate | None:
    """Parse `text` into a predicate; 400 with Codat's messages when malformed or unresolvable."""
    if text is None or text == "":
        return None
    if len(text) >= MAX_QUERY_LENGTH:
        raise malformed_query(service)

    def resolve(prop: str) -> None:
        root = prop.split(".")[0]
        if known_properties is not None and root not in known_properties:
            raise ApiError(
                400,
                f"Error parsing query - Could not resolve property {prop} on {entity}",
                service=service,
            )

    try:
        return _Parser(text, resolve).parse()
    except ValueError:
        raise malformed_query(service) from None


def order(records: list[dict], order_by: str | None) -> list[dict]:
    if not order_by:
        return records
    for field in reversed([part.strip() for part in order_by.split(",") if part.strip()]):
        descending = field.startswith("-")
        name = field.lstrip("-+")

        def key(record, name=name):
            value = _lookup(record, name)
            number = _as_number(value)
            if value is None:
                return (1, 0, "")
            if number is not None:
                return (0, number, "")
            return (0, 0, str(value).lower())

        present = [record for record in records if _lookup(record, name) is not None]
        missing = [record for record in records if _lookup(record, name) is None]
        records = sorted(present, key=key, reverse=descending) + missing
    return records


def paging_params(params) -> tuple[int, int]:
    page = int32_param(params, "page", 1)
    page_size = int32_param(params, "pageSize", DEFAULT_PAGE_SIZE)
    if page < 1:
        raise bad_request("page", "must be 1 or greater")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise bad_request("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}")
    return page, page_size


def int32_param(params, name: str, default: int | None) -> int | None:
    """A query parameter the documents type as int32: 400 naming it if it is not one."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(name, f"'{raw}' is not an integer") from None
    if not INT32_MIN <= value <= INT32_MAX:
        raise bad_request(name, f"{raw} is out of range for a 32-bit integer")
    return value


def paged(
    records: list[dict],
    *,
    path: str,
    params,
    known_properties: set[str] | None,
    entity: str,
    service: str = "PublicApi",
) -> dict:
    """Filter, order and page `records` into Codat's paging envelope."""
    page, page_size = paging_params(params)
    predicate = compile_query(params.get("query"), known_properties, entity, service)
    if predicate is not None:
        records = [record for record in records if predicate(record)]
    records = order(records, params.get("orderBy"))
    total = len(records)
    start = (page - 1) * page_size
    extra = {key: params[key] for key in ("query", "orderBy") if params.get(key)}

    def link(number: int) -> dict:
        return {"href": f"{path}?{urlencode({'page': number, 'pageSize': page_size, **extra})}"}

    links = {"self": {"href": path}, "current": link(page)}
    if start + page_size < total:
        links["next"] = link(page + 1)
    if page > 1:
        links["previous"] = link(page - 1)
    return {
        "results": records[start : start + page_size],
        "pageNumber": page,
        "pageSize": page_size,
        "totalResults": total,
        "_links": links,
    }
