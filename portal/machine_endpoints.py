"""Codat's webhook deliveries skip the middleware that exists for browsers.

A delivery is a signed POST from Codat's servers: no cookies, no user, no form. Sessions,
authentication, CSRF (the view is exempt anyway), messages, clickjacking headers and static
files have nothing to do for it, yet they cost about a fifth of what Django spends on a
delivery (0.08-0.10 ms of 0.47 ms, measured in-process; bench/webhook_ingest.py shows the
effect under gunicorn).

Django builds one middleware chain per handler, from settings.MIDDLEWARE, and has no per-URL
chain. So a second handler is built here, once at startup, with the security middleware alone
(the HTTPS redirect and HSTS still apply), and requests for the machine endpoints go to it.
Everything else (the admin, the consent pages, health) goes through the full chain.
"""

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import reverse

MACHINE_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]


def machine_paths() -> frozenset[str]:
    return frozenset({reverse("webhooks:codat")})


def machine_endpoints_handler() -> WSGIHandler:
    """A Django handler whose middleware chain is MACHINE_MIDDLEWARE."""
    browser_middleware = settings.MIDDLEWARE
    # WSGIHandler() reads the list once, in its constructor; this runs while wsgi.py is
    # imported, before any request, so nothing else can see the list swapped.
    settings.MIDDLEWARE = MACHINE_MIDDLEWARE
    try:
        return WSGIHandler()
    finally:
        settings.MIDDLEWARE = browser_middleware


def with_machine_endpoints(application):
    """`application`, with the machine endpoints' requests sent to their own handler."""
    machine_handler = machine_endpoints_handler()
    paths = machine_paths()

    def dispatch(environ, start_response):
        handler = machine_handler if environ.get("PATH_INFO") in paths else application
        return handler(environ, start_response)

    return dispatch
