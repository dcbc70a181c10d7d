"""Consent recorded as an SMB gives it: a link issued and opened, the current text agreed to."""

from consent import selectors, services
from consent.models import ConsentChannel

LINK = services.Actor(channel=ConsentChannel.LINK, client={"ip_network": "127.0.0.0/24"})


def open_request(company, products):
    issued = services.consent_request_create(company=company, products=products)
    return services.consent_link_exchange(token=issued.token)


def grant(company, product, *, optional=(), request=None):
    request = request or open_request(company, [product])
    return services.consent_grant(
        company=company,
        product=product,
        text=selectors.consent_text_current(product=product),
        optional_data_types=optional,
        actor=LINK,
        request=request,
    )
