"""Errors the consent services raise; callers show them as they are."""


class ConsentError(Exception):
    """A consent rule refused the request."""


class ConsentLinkInvalid(ConsentError):
    """A consent or manage link that is unknown, expired or already used.

    One error for all three on purpose: the public pages must not tell them apart.
    """


class ConsentAlreadyAnswered(ConsentError):
    """The request was already answered for this product."""
