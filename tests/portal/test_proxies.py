"""Behind reverse proxies, the consent pages count and record the client, not the proxy."""

import io
import sys

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse

from portal.proxies import behind_trusted_proxies

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


def get(application, path: str, *, forwarded_for: str | None) -> int:
    """A GET through the whole WSGI stack as the nearest proxy sends it; the status code."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": PROXY,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    if forwarded_for is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded_for
    statuses = []
    # As Django's test client does: the request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0].split()[0])


def guess(number: int) -> str:
    return reverse("consent:link", kwargs={"token": f"guess-{number:040d}"})


def test_with_one_trusted_proxy_each_client_has_its_own_rate_limit(settings):
    settings.CONSENT_RATE_LIMIT = "3/m"
    application = behind_trusted_proxies(WSGIHandler(), hops=1)

    statuses = [get(application, guess(n), forwarded_for=f"192.0.2.{n + 10}") for n in range(6)]

    assert statuses == [404] * 6


def test_a_client_cannot_escape_its_limit_by_writing_its_own_forwarded_for(settings):
    settings.CONSENT_RATE_LIMIT = "3/m"
    application = behind_trusted_proxies(WSGIHandler(), hops=1)

    # The client writes a new address each time; the proxy appends the one it saw.
    statuses = [
        get(application, guess(n), forwarded_for=f"203.0.113.{n + 1}, 198.51.100.77")
        for n in range(5)
    ]

    assert statuses == [404, 404, 404, 429, 429]


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.CONSENT_RATE_LIMIT = "3/m"
    settings.TRUSTED_PROXY_HOPS = 0
    application = behind_trusted_proxies(WSGIHandler())

    # Every visitor looks like the proxy: the header alone proves nothing.
    statuses = [get(application, guess(n), forwarded_for=f"192.0.2.{n + 100}") for n in range(4)]

    assert statuses == [404, 404, 404, 429]
