"""Real `celery worker` processes for the tests that need them, all started by `CeleryWorker`.

`celery_worker_process` (session) runs on the session's Redis for the tests that only need tasks
consumed. `operations_worker` runs for one test on a Redis database of its own (the session's + 1)
and pointed at the Codat sandbox: the operations tests SIGKILL it, restart it and flush its Redis,
which then disturbs nothing else (the session's worker consumes the session's database only).
"""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
import redis

from tests.plugins.database import database_url_for_worker
from tests.plugins.redis_server import redis_url_with_db
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent.parent


def point_celery_at(app, url: str) -> None:
    """Make this process's producer publish to `url` (the pools cache the old broker)."""
    app.conf.update(broker_url=url, result_backend=url)
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


class CeleryWorker:
    """A real `celery worker` process group: start it, SIGKILL it, stop it, start it again.

    `app` is this process's Celery app on the same broker, to ping the worker by its name. The
    log at `log_path` is emptied at the first start and appended to on restarts.
    """

    def __init__(self, *, app, env: dict, concurrency: int, log_path: Path, name: str = "test"):
        self.app = app
        self.env = env
        self.concurrency = concurrency
        self.log_path = log_path
        self.name = name
        self.process: subprocess.Popen | None = None
        self.hostname = ""
        self.peak_rss = 0

    def start(self, timeout: float = 30.0) -> None:
        self.hostname = f"{self.name}-{uuid.uuid4().hex[:8]}@test"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/
        log = open(self.log_path, "a" if self.process else "w")  # noqa: SIM115
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
        wait_until(
            self._answers_a_ping,
            timeout=timeout,
            message=f"the worker did not answer a ping; see {self.log_path}",
        )

    def _answers_a_ping(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the worker exited with {self.process.returncode}; see {self.log_path}"
            )
        return bool(self.app.control.ping(destination=[self.hostname], timeout=0.5))

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


def worker_env(**variables: str) -> dict:
    """This process's environment for a worker on the test settings, plus `variables`."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", **variables}


@pytest.fixture(scope="session")
def celery_app_on_redis(redis_url):
    """Point this process's Celery app (the producer side) at the test Redis."""
    from django.conf import settings

    from portal.celery import app

    settings.REDIS_URL = redis_url
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    yield app


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, celery_app_on_redis, redis_url):
    """A real `celery worker` process on the real Redis and the test database."""
    worker = CeleryWorker(
        app=celery_app_on_redis,
        env=worker_env(REDIS_URL=redis_url, DATABASE_URL=database_url_for_worker()),
        concurrency=2,
        log_path=REPO / "var" / "test-worker.log",
        name="session",
    )
    worker.start()
    yield worker.process
    worker.stop()


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
    env = worker_env(
        REDIS_URL=operations_redis_url,
        CODAT_BASE_URL=codat_sandbox.base_url,
        CODAT_API_KEY=codat_sandbox.api_key,
        CODAT_OPERATIONS_RETRY_BASE_SECONDS="0.2",
        CODAT_OPERATIONS_RETRY_MAX_SECONDS="2",
        CODAT_OPERATIONS_STUCK_SECONDS="6",
        CELERY_VISIBILITY_TIMEOUT="20",
        LOG_LEVEL="WARNING",
    )
    yield env
    point_celery_at(celery_app_on_redis, previous_broker)
    client.flushdb()
    client.close()


@pytest.fixture
def operations_worker(operations_env, django_db_setup, celery_app_on_redis):
    """A running worker (4 processes) on the test database; `.kill()` and `.start()` it."""
    worker = CeleryWorker(
        app=celery_app_on_redis,
        env={**operations_env, "DATABASE_URL": database_url_for_worker()},
        concurrency=int(os.environ.get("OPERATIONS_TEST_CONCURRENCY", "4")),
        log_path=REPO / "var" / "test-operations-worker.log",
        name="ops",
    )
    worker.start()
    yield worker
    worker.stop()
