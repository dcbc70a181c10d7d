"""Where the consent check plugs into the services that start Codat reads (invariant 4).

Every service in operations/services.py that adds a product or refreshes data asks
`companies_refused_for_consent` first, for all the companies of the request at once, and leaves
out (or, for a single company, refuses) those it names. It asks consent/enforcement.py, which
refuses a company whose active consent does not cover every data type of the product.
"""

from collections.abc import Iterable


def companies_refused_for_consent(
    *, company_ids: Iterable[int], product=None, data_types: Iterable[str] | None = None
) -> dict[int, str]:
    """Map each company (pk) that may not be read to the reason shown to staff and callers.

    `product` is the product being added or refreshed (None for client-level refreshes);
    `data_types` the data types the call would read (None: all of the product's, or all).
    """
    from consent.enforcement import companies_refused_for_consent as refused_by_consent

    return refused_by_consent(company_ids=company_ids, product=product, data_types=data_types)
