"""`make run` as a newcomer uses it: all starts, the printed login works, consent links point at
the web server it started, Ctrl-C stops all."""

import csv
import io
import re
import socket
import stat

import pytest
import requests

from tests.portal.devstack_process import running_devstack


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


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
    with running_devstack(tmp_path) as stack:
        admin_url, web_port = stack.admin_url, stack.web_port
        username, password = stack.login
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

    for port in (stack.web_port, stack.redis_port, stack.sandbox_port):
        assert not port_open(port), f"port {port} still answers after Ctrl-C"
    # The development server logged the consent link it served, without its token (issue 17).
    logged = stack.process.stdout.read()
    token = links[0].rstrip("/").rsplit("/", 1)[1]
    assert "GET /consent/link/[redacted]/" in logged
    assert token not in logged
    # var/ (the sandbox's API key, its state, Redis's snapshot) is its owner's only.
    for path in [tmp_path / "var", *(tmp_path / "var").rglob("*")]:
        if not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
