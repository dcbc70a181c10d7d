"""The one Redis client of each process (the broker's own connections are Celery's business)."""

import os

import redis
from django.conf import settings

_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One client, with its connection pool, per process and URL: a forked worker gets its own,
    and tests that point settings.REDIS_URL elsewhere at run time get a client for that URL."""
    key = (os.getpid(), settings.REDIS_URL)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
        )
        _clients[key] = client
    return client
