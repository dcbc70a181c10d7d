"""Fixtures for a real Codat sandbox process (python -m sandbox), shared by every suite.

`codat_sandbox` (session): one sandbox on a free loopback port, a temporary state directory and a
random CODAT_API_KEY. `sandbox` (function): the same process, reset before the test.
"""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.ports import free_port
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_TIMEOUT_SECONDS = 20


class SandboxProcess:
    """A running sandbox: where it is, how to authenticate, and control-API helpers."""

    def __init__(self, base_url: str, api_key: str, process: subprocess.Popen, state_dir: Path):
        self.base_url = base_url
        self.api_key = api_key
        self.auth_header = "Basic " + base64.b64encode(api_key.encode()).decode()
        self.process = process
        self.state_dir = state_dir
        self.session = requests.Session()
        self.session.headers["Authorization"] = self.auth_header

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url(path), **kwargs)

    def control(self, method: str, path: str, json=None) -> requests.Response:
        """Call the control API: `control("PUT", "clock", {"speed": 1000})` -> /_sandbox/clock."""
        response = self.request(method, "/_sandbox/" + path.lstrip("/"), json=json)
        if response.status_code >= 400:
            raise AssertionError(f"control {method} {path}: {response.status_code} {response.text}")
        return response

    def reset(self) -> None:
        self.control("POST", "reset")

    def set_speed(self, speed: float) -> None:
        self.control("PUT", "clock", {"speed": speed})

    def advance(self, seconds: float) -> None:
        self.control("POST", "clock/advance", {"seconds": seconds})

    def events(self, event_type: str | None = None) -> list[dict]:
        params = {"eventType": event_type} if event_type else None
        return self.request("GET", "/_sandbox/webhooks/events", params=params).json()

    def secret(self, webhook_id: str) -> str:
        return self.control("GET", f"webhooks/consumers/{webhook_id}/secret").json()["secret"]

    def authorize(self, company_id: str, connection_id: str) -> dict:
        path = f"companies/{company_id}/connections/{connection_id}/authorize"
        return self.control("POST", path).json()

    def wait_until(self, predicate, timeout: float = 10.0, interval: float = 0.02):
        """`tests.waiting.wait_until`, at the pace of the sandbox's own tests."""
        return wait_until(
            predicate, timeout=timeout, interval=interval, message="sandbox condition not reached"
        )


def start_sandbox(state_dir: Path, *extra_args: str, api_key: str | None = None) -> SandboxProcess:
    api_key = api_key or secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "CODAT_API_KEY": api_key}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            *extra_args,
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running = SandboxProcess(f"http://127.0.0.1:{port}", api_key, process, state_dir)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited: {process.stderr.read().decode()[-2000:]}")
        try:
            return running.request("GET", "/_sandbox/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, timeout=STARTUP_TIMEOUT_SECONDS, message="the sandbox did not answer")
    except BaseException:
        stop_sandbox(running)
        raise
    return running


def stop_sandbox(running: SandboxProcess) -> None:
    running.session.close()
    if running.process.poll() is None:
        running.process.terminate()
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
    if running.process.stderr:
        running.process.stderr.close()


@pytest.fixture(scope="session")
def codat_sandbox(tmp_path_factory):
    running = start_sandbox(tmp_path_factory.mktemp("codat-sandbox"))
    try:
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture
def sandbox(codat_sandbox):
    codat_sandbox.reset()
    return codat_sandbox
