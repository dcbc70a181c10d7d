"""A Celery worker for the operations tests that can be SIGKILLed and restarted, on its own Redis
database and pointed at the Codat sandbox.

The operations tests use a Redis database of their own (the session's database + 1) for both
the broker and the fleet limiter, so flushing it mid-test, or a worker of another suite on the
session's database, cannot disturb anything else.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
import redis

from tests.plugins.services import database_url_for_worker

REPO = Path(__file__).resolve().parent.parent.parent


def redis_url_with_db(url: str, offset: int) -> str:
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + offset) % 16}"))


def point_celery_at(app, url: str) -> None:
    """Make this process's producer publish to `url` (the pools cache the old broker)."""
    app.conf.update(broker_url=url, result_backend=url)
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


class WorkerControl:
    """Start, SIGKILL and restart a real `celery worker` process group."""

    def __init__(self, *, app, env: dict, concurrency: int, log_path: Path):
        self.app = app
        self.env = env
        self.concurrency = concurrency
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.hostname = ""
        self.peak_rss = 0

    def start(self, timeout: float = 30.0) -> None:
        self.hostname = f"ops-{uuid.uuid4().hex[:8]}@test"
        log = open(self.log_path, "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                f"--concurrency={self.concurrency}",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
                "-n",
                self.hostname,
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log_path}")
            if self.app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise RuntimeError("the worker did not answer a ping in time")

    def sample_memory(self) -> int:
        """Resident memory of the worker's process group (main process and pool children)."""
        if self.process is None or self.process.poll() is not None:
            return 0
        try:
            main = psutil.Process(self.process.pid)
            total = main.memory_info().rss + sum(
                child.memory_info().rss for child in main.children(recursive=True)
            )
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, total)
        return total

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acknowledgement."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def operations_redis_url(redis_url):
    return redis_url_with_db(redis_url, 1)


@pytest.fixture
def operations_env(settings, codat_sandbox, operations_redis_url, celery_app_on_redis):
    """This process and its workers on the operations Redis database and the sandbox."""
    client = redis.Redis.from_url(operations_redis_url)
    client.flushdb()
    previous_broker = celery_app_on_redis.conf.broker_url
    settings.REDIS_URL = operations_redis_url
    settings.CODAT_BASE_URL = codat_sandbox.base_url
    settings.CODAT_API_KEY = codat_sandbox.api_key
    settings.CODAT_OPERATIONS_RETRY_BASE_SECONDS = 0.2
    settings.CODAT_OPERATIONS_RETRY_MAX_SECONDS = 2.0
    settings.CODAT_OPERATIONS_STUCK_SECONDS = 6
    point_celery_at(celery_app_on_redis, operations_redis_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "REDIS_URL": operations_redis_url,
        "CODAT_BASE_URL": codat_sandbox.base_url,
        "CODAT_API_KEY": codat_sandbox.api_key,
        "CODAT_OPERATIONS_RETRY_BASE_SECONDS": "0.2",
        "CODAT_OPERATIONS_RETRY_MAX_SECONDS": "2",
        "CODAT_OPERATIONS_STUCK_SECONDS": "6",
        "CELERY_VISIBILITY_TIMEOUT": "20",
        "LOG_LEVEL": "WARNING",
    }
    yield env
    point_celery_at(celery_app_on_redis, previous_broker)
    client.flushdb()
    client.close()


@pytest.fixture
def operations_worker(operations_env, django_db_setup, celery_app_on_redis):
    """A running worker (4 processes) on the test database; `.kill()` and `.start()` it."""
    env = {**operations_env, "DATABASE_URL": database_url_for_worker()}
    worker = WorkerControl(
        app=celery_app_on_redis,
        env=env,
        concurrency=int(os.environ.get("OPERATIONS_TEST_CONCURRENCY", "4")),
        log_path=REPO / "var" / "test-operations-worker.log",
    )
    worker.start()
    yield worker
    worker.stop()
