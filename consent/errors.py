"""Errors the consent services raise; callers show them as they are."""


class ConsentError(Exception):
    """A consent rule refused the request."""


class ConsentRequired(ConsentError):
    """A Codat call for a product whose data types are not all covered by active consent.

    Raised by `consent.enforcement.require_consent`, which the add-product and refresh
    services call before they write any operation row (design.md, invariant 4).
    """

    def __init__(self, *, company, product, state: str):
        self.company = company
        self.product = product
        self.state = state
        super().__init__(
            f"{company} has no active consent covering every data type of "
            f"{product.identifier!r} (consent state: {state})."
        )


class ConsentLinkInvalid(ConsentError):
    """A consent or manage link that is unknown, expired or already used.

    One error for all three on purpose: the public pages must not tell them apart.
    """


class ConsentAlreadyAnswered(ConsentError):
    """The request was already answered for this product."""
