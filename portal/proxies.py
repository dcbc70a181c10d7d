"""The client's address when the portal runs behind reverse proxies (a load balancer, nginx).

Behind them REMOTE_ADDR is the nearest proxy's address, shared by every visitor: the consent
pages' per-IP rate limit would then throttle all SMBs together, and consent evidence would name
the proxy. Each proxy appends the address it saw to X-Forwarded-For, so with N trusted proxies
the client is the Nth address from the right; anything further left is what the client wrote
itself and is not believed. Werkzeug's ProxyFix does exactly that, for the whole application,
so every reader of REMOTE_ADDR gets the client.
"""

from django.conf import settings
from werkzeug.middleware.proxy_fix import ProxyFix


def behind_trusted_proxies(application, *, hops: int | None = None):
    """`application`, reading REMOTE_ADDR from X-Forwarded-For across `hops` trusted proxies
    (TRUSTED_PROXY_HOPS; 0, the default, trusts no header and leaves the application as is)."""
    hops = settings.TRUSTED_PROXY_HOPS if hops is None else hops
    if hops <= 0:
        return application
    # Only the client address: the scheme comes through SECURE_PROXY_SSL_HEADER, and the host
    # through ALLOWED_HOSTS as the proxy forwards it.
    return ProxyFix(application, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)
