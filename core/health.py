"""Health of the parts the portal needs: the database, Redis and a worker that consumes tasks."""

import redis
from django.conf import settings
from django.db import connection


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def redis_ok() -> bool:
    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def worker_ok(timeout: float = 3.0) -> bool:
    """A canary task's round trip: proves a worker is consuming, not merely alive."""
    from core.tasks import ping_task

    try:
        return ping_task.apply_async(expires=timeout).get(timeout=timeout) == "pong"
    except Exception:
        return False


def check_all(*, include_worker: bool) -> dict[str, bool]:
    checks = {"database": database_ok(), "redis": redis_ok()}
    if include_worker:
        checks["worker"] = checks["redis"] and worker_ok()
    return checks
