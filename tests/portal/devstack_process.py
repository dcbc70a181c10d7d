"""`make run`'s stack (`python -m portal.devstack`) started as a newcomer's shell would start
it, on free ports and SQLite in a temporary folder, for the tests that use it like a user."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent

# What pytest itself puts in the environment; a newcomer's shell has none of it.
TEST_SETTINGS = (
    "REDIS_URL",
    "DATABASE_URL",
    "CODAT_BASE_URL",
    "CODAT_API_KEY",
    "CODAT_WEBHOOK_SECRETS",
    "DEBUG",
    "SECRET_KEY",
    "CONSENT_BASE_URL",
    "DJANGO_SETTINGS_MODULE",
)


@dataclass
class Devstack:
    process: subprocess.Popen
    banner: str
    web_port: int
    redis_port: int
    sandbox_port: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def admin_url(self) -> str:
        return re.search(r"Admin:\s+(\S+)", self.banner).group(1)

    @property
    def login(self) -> tuple[str, str]:
        return re.search(r"Login:\s+(\S+) / (\S+)", self.banner).groups()


def read_banner(process, deadline: float) -> str:
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if "Press Ctrl-C" in line:
            return "".join(lines)
    raise AssertionError("no banner from make run:\n" + "".join(lines[-40:]))


@contextmanager
def running_devstack(tmp_path: Path) -> Iterator[Devstack]:
    """The whole stack with its demo data, stopped with Ctrl-C (SIGINT) on the way out."""
    web_port, redis_port, sandbox_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in TEST_SETTINGS}
    env.update(
        PORT=str(web_port),
        EMBEDDED_REDIS_PORT=str(redis_port),
        SANDBOX_PORT=str(sandbox_port),
        PORTAL_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.devstack"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = read_banner(process, time.monotonic() + 300)
        yield Devstack(process, banner, web_port, redis_port, sandbox_port)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
