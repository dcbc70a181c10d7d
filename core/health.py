"""Health of the parts the portal needs: the database, Redis and a worker that consumes tasks."""

import math
import time

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


# `/healthz/?worker=1` is public, and each probe is a message on the queue the operations use:
# one probe at a time for the whole fleet, its answer shared for this long.
WORKER_PROBE_SHARED_SECONDS = 10
WORKER_ANSWER_KEY = "portal:health:worker-answer"
WORKER_PROBE_LOCK_KEY = "portal:health:worker-probe"


def worker_ok(timeout: float = 3.0) -> bool:
    """Whether a worker consumes tasks, from a canary task's round trip (not merely alive).

    However often it is asked, at most one canary is in flight and one is sent every
    WORKER_PROBE_SHARED_SECONDS; callers in between get the last answer, or wait for the probe
    under way.
    """
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
        answer = client.get(WORKER_ANSWER_KEY)
        if answer is not None:
            return answer == b"1"
        if not client.set(WORKER_PROBE_LOCK_KEY, 1, nx=True, ex=math.ceil(timeout) + 2):
            return _answer_of_probe_under_way(client, timeout)
        try:
            ok = _canary_round_trip(timeout)
            client.set(WORKER_ANSWER_KEY, b"1" if ok else b"0", ex=WORKER_PROBE_SHARED_SECONDS)
            return ok
        finally:
            client.delete(WORKER_PROBE_LOCK_KEY)
    except redis.RedisError:
        return False


def _answer_of_probe_under_way(client, timeout: float) -> bool:
    deadline = time.monotonic() + timeout + 1
    while time.monotonic() < deadline:
        answer = client.get(WORKER_ANSWER_KEY)
        if answer is not None:
            return answer == b"1"
        time.sleep(0.1)
    return False


def _canary_round_trip(timeout: float) -> bool:
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
