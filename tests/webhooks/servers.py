"""The portal under gunicorn, in a subprocess, as production runs it."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.ports import free_port
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent.parent


@contextlib.contextmanager
def gunicorn_portal(
    *,
    database_url: str,
    redis_url: str,
    secrets: list[str],
    workers: int = 4,
    threads: int = 1,
    port: int | None = None,
):
    """Yield the base URL of gunicorn serving portal.wsgi with production settings (the tests'
    and the benches'). More than one thread makes gthread workers. `port`: one chosen before
    (a webhook consumer's URL names it before the receiver can start), else a free one."""
    port = port or free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "SECRET_KEY": "gunicorn-test-secret-key-0f3c8a5d7e9b1c2d4f6a8b0c2e4d6f8a",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Behind no TLS proxy here; the tests send plain HTTP on loopback.
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CODAT_WEBHOOK_SECRETS": ",".join(secrets),
        # Production settings refuse the sandbox's address; the endpoint never calls Codat.
        "CODAT_BASE_URL": "https://api.codat.io",
        "CODAT_API_KEY": "not-used-by-the-webhook-endpoint",
        "CONSENT_BASE_URL": "https://portal.example",
        "LOG_LEVEL": "WARNING",
    }
    (REPO / "var").mkdir(exist_ok=True)  # a fresh clone has none until `make run`
    log = open(REPO / "var" / f"test-gunicorn-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log.name}")
        try:
            requests.get(base_url + "/webhooks/codat/", timeout=5)
        except requests.RequestException:
            return False
        return True

    try:
        wait_until(answers, timeout=30, interval=0.1, message="gunicorn did not answer")
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()
