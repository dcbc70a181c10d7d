"""Logs and error pages keep secrets (issue 17, hole 8): consent and manage links' tokens are cut
out of the development server's request log and of Django's "Not Found" lines, the DEBUG error
page shows no broker URL or password, and `make run`'s var/ is its owner's only."""

import io
import logging
import os
import stat
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from portal.devstack import make_var_private
from portal.log_privacy import ConsentTokenFilter

TOKEN = "Zx9-secret-consent-token-4ab7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"
SIGNED = "eyJjb21wYW55Ijo0Mn0:1vXyZa:manage-link-signature-q8w7e6r5t4"


def filtered_handler(logger_name: str) -> logging.Handler:
    """The configured handler that writes `logger_name`'s records (the one with the filter)."""
    logger = logging.getLogger(logger_name)
    while logger is not None:
        for handler in logger.handlers:
            if any(isinstance(f, ConsentTokenFilter) for f in handler.filters):
                return handler
        logger = logger.parent if logger.propagate else None
    raise AssertionError(f"no handler of {logger_name} filters consent tokens")


@pytest.fixture
def written_by():
    """Swaps the stream of the handler that writes a logger's records; what it wrote."""
    swapped = []

    def capture(logger_name: str) -> io.StringIO:
        handler = filtered_handler(logger_name)
        stream = io.StringIO()
        swapped.append((handler, handler.setStream(stream)))
        return stream

    yield capture
    for handler, stream in swapped:
        handler.setStream(stream)


def test_the_development_servers_request_log_shows_no_consent_or_manage_token(written_by):
    stream = written_by("django.server")
    server_log = logging.getLogger("django.server")

    # As django.core.servers.basehttp.WSGIRequestHandler.log_message logs a request.
    for path in (f"/consent/link/{TOKEN}/", f"/consent/manage/link/{SIGNED}/"):
        server_log.info('"%s" %s %s', f"GET {path} HTTP/1.1", "302", "0")

    text = stream.getvalue()
    assert TOKEN not in text and SIGNED not in text
    assert '"GET /consent/link/[redacted]/ HTTP/1.1" 302 0' in text
    assert '"GET /consent/manage/link/[redacted]/ HTTP/1.1" 302 0' in text


@pytest.mark.django_db
def test_djangos_not_found_line_for_a_bad_link_shows_no_token(written_by, settings):
    settings.CONSENT_RATE_LIMIT = "1000/m"
    stream = written_by("django.request")

    response = Client().get(reverse("consent:link", kwargs={"token": TOKEN}))

    assert response.status_code == 404
    text = stream.getvalue()
    assert "Not Found: /consent/link/[redacted]/" in text
    assert TOKEN not in text


@pytest.mark.urls("tests.portal.raising_urls")
def test_the_debug_error_page_shows_no_broker_url_or_password(settings):
    settings.DEBUG = True
    broker = "redis://:broker-pass-5f4e3d@redis.internal:6379/0"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = broker
    settings.SOMETHING_ELSE = ["smtp://mailer:mail-pass-9a8b7c@smtp.internal:587"]

    response = Client(raise_request_exception=False).get(
        "/fails/", REDIS_URL=broker, HTTP_X_NOTE="plain header"
    )

    assert response.status_code == 500
    page = response.content.decode()
    assert "a view that fails" in page  # the technical page, with its settings list
    assert "CELERY_BROKER_URL" in page
    assert "broker-pass-5f4e3d" not in page and "redis.internal" not in page
    assert "mail-pass-9a8b7c" not in page


def test_make_runs_var_directory_and_files_are_its_owners_only(tmp_path):
    var = tmp_path / "var"
    (var / "sandbox").mkdir(parents=True)
    left_over = var / "sandbox-api-key"
    left_over.write_text("key from an earlier run")
    left_over.chmod(0o644)
    (var / "sandbox").chmod(0o755)
    umask = os.umask(0o022)
    try:
        make_var_private(var)
        # What a process started afterwards (the sandbox, Redis, the web server) writes there.
        subprocess.run(
            [sys.executable, "-c", f"open({str(var / 'sandbox' / 'state.db')!r}, 'w').write('x')"],
            check=True,
        )
    finally:
        os.umask(umask)

    for path in (var, var / "sandbox", left_over, var / "sandbox" / "state.db"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
