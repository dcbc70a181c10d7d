"""`gunicorn portal.wsgi` as the README starts it: gunicorn.conf.py sets the worker count."""

import os
import subprocess
import sys
import time

import psutil
import pytest
import requests

from tests.ports import free_port
from tests.waiting import wait_until
from tests.webhooks.servers import REPO


def workers_started(extra_env: dict) -> int:
    """Start gunicorn the README's way (only a bind added), count its workers, stop it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "WEB_CONCURRENCY"}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.dev",
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",
        **extra_env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def answers() -> bool:
        assert process.poll() is None, "gunicorn exited"
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz/", timeout=5)
        except requests.RequestException:
            return False
        return True

    try:
        wait_until(answers, timeout=30, interval=0.1, message="gunicorn did not answer")
        # gunicorn forks its workers a moment apart: count for a while after the first answers.
        counts = []
        for _ in range(15):
            counts.append(len(psutil.Process(process.pid).children()))
            time.sleep(0.1)
        return max(counts)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.slow
def test_gunicorn_starts_two_workers_per_core_plus_one_unless_told_otherwise():
    assert workers_started({}) == 2 * (os.cpu_count() or 1) + 1
    assert workers_started({"WEB_CONCURRENCY": "2"}) == 2
