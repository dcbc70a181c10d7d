"""Iterating over Codat's paged lists.

Every paged list answers `{results, pageNumber, pageSize, totalResults, _links}`, with
`page` starting at 1 and `totalResults` counted after the `query` filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from codat.errors import CodatUnreadableResponse

FetchPage = Callable[[int], dict[str, Any]]


def iter_results(fetch_page: FetchPage) -> Iterator[Any]:
    """Yield the items of every page, fetching page 1, 2, ... lazily.

    `fetch_page(page_number)` returns one page envelope. Iteration stops after the last page:
    when `pageNumber * pageSize >= totalResults`, when `_links` has no `next`, or when a page is
    empty (so a server that miscounts `totalResults` cannot make this loop forever).
    """
    page_number = 1
    while True:
        envelope = fetch_page(page_number)
        results = envelope.get("results") if isinstance(envelope, dict) else None
        if not isinstance(results, list):
            raise CodatUnreadableResponse(
                f"page {page_number} has no 'results' list", body=envelope
            )
        yield from results
        if not results or _is_last_page(envelope, page_number):
            return
        page_number += 1


def _is_last_page(envelope: dict[str, Any], page_number: int) -> bool:
    links = envelope.get("_links")
    if isinstance(links, dict) and "next" not in links:
        return True
    number = envelope.get("pageNumber", page_number)
    size = envelope.get("pageSize")
    total = envelope.get("totalResults")
    if isinstance(number, int) and isinstance(size, int) and isinstance(total, int):
        return number * size >= total
    return False
