"""`make run` as a newcomer uses it: all starts, the printed login works, consent links point at
the web server it started, Ctrl-C stops all."""

import csv
import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


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


def consent_campaign_links(session, web_url: str) -> list[str]:
    """Ask every company lacking consent to any product, through the admin; the links in the CSV."""
    form_url = f"{web_url}/admin/consent/campaign/add/"
    form = session.get(form_url, timeout=10).text
    products = re.search(r'<select name="products".*?</select>', form, re.S).group(0)
    response = session.post(
        form_url,
        data={
            "name": "make run consent links",
            "products": re.findall(r'<option value="(\d+)"', products),
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": form_url},
        timeout=30,
    )
    assert response.headers["Content-Type"].startswith("text/csv"), response.text[:2000]
    return [row["consent_link"] for row in csv.DictReader(io.StringIO(response.text))]


@pytest.mark.slow
def test_make_run_serves_admin_demo_data_worker_and_consent_links_on_its_port_then_stops(tmp_path):
    web_port, redis_port, sandbox_port = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # A newcomer's shell: none of the settings pytest itself put in the environment.
        if key
        not in (
            "REDIS_URL",
            "DATABASE_URL",
            "CODAT_BASE_URL",
            "CODAT_API_KEY",
            "CODAT_WEBHOOK_SECRETS",
            "DEBUG",
            "SECRET_KEY",
            "CONSENT_BASE_URL",
        )
    }
    env.update(
        PORT=str(web_port),
        EMBEDDED_REDIS_PORT=str(redis_port),
        SANDBOX_PORT=str(sandbox_port),
        PORTAL_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        DJANGO_SETTINGS_MODULE="portal.settings.dev",
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
        admin_url = re.search(r"Admin:\s+(\S+)", banner).group(1)
        username, password = re.search(r"Login:\s+(\S+) / (\S+)", banner).groups()
        assert admin_url == f"http://127.0.0.1:{web_port}/admin/"

        session = requests.Session()
        login_url = admin_url + "login/"
        session.get(login_url, timeout=10)
        response = session.post(
            login_url,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": "/admin/companies/company/",
            },
            headers={"Referer": login_url},
            timeout=10,
        )
        assert response.status_code == 200
        assert "Harbour Coffee Roasters" in response.text

        # The consumer make run registered is in the admin, registered, with Codat's id, before
        # anyone presses "List consumers at Codat".
        consumers = session.get(f"{admin_url}webhooks/webhookconsumer/", timeout=10).text
        webhook_url = f"http://127.0.0.1:{web_port}/webhooks/codat/"
        rows = [row for row in consumers.split("<tr")[1:] if webhook_url in row]
        assert len(rows) == 1, consumers[-3000:]
        assert 'class="field-status">Registered<' in rows[0]
        assert re.search(r'class="field-codat_id">[0-9a-f]{8}-[0-9a-f-]{27}<', rows[0]), rows[0]

        health = session.get(f"http://127.0.0.1:{web_port}/healthz/?worker=1", timeout=15)
        assert health.json() == {"ok": True, "database": True, "redis": True, "worker": True}

        links = consent_campaign_links(session, f"http://127.0.0.1:{web_port}")
        assert links, "the demo has companies awaiting consent"
        for link in links:
            assert link.startswith(f"http://127.0.0.1:{web_port}/consent/link/"), link
        assert session.get(links[0], timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)

    for port in (web_port, redis_port, sandbox_port):
        assert not port_open(port), f"port {port} still answers after Ctrl-C"
    # The development server logged the consent link it served, without its token (issue 17).
    logged = process.stdout.read()
    token = links[0].rstrip("/").rsplit("/", 1)[1]
    assert "GET /consent/link/[redacted]/" in logged
    assert token not in logged
    # var/ (the sandbox's API key, its state, Redis's snapshot) is its owner's only.
    for path in [tmp_path / "var", *(tmp_path / "var").rglob("*")]:
        if not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
