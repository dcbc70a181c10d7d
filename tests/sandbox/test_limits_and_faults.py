"""Rate limits (daily quota, per minute, concurrency), injected faults, the call log, restarts."""

import concurrent.futures

import pytest

from tests.plugins.sandbox import start_sandbox, stop_sandbox

pytestmark = pytest.mark.sandbox

TOO_MANY = "You have made too many requests in a given amount of time; please retry later."


def test_every_response_carries_the_rate_limit_headers(api):
    response = api.get("/companies")
    assert response.headers["X-Rate-Limit-Limit"] == "1000"
    assert int(response.headers["X-Rate-Limit-Remaining"]) < 1000
    assert response.headers["X-Rate-Limit-Reset"].endswith("T00:00:00.000Z")


def test_daily_quota_answers_429_until_midnight_and_fires_reached_and_reset(api, sandbox):
    sandbox.control("PUT", "rate-limits", {"dailyQuota": 3})
    for _ in range(3):
        assert api.get("/companies").status_code == 200
    limited = api.get("/companies")
    assert limited.status_code == 429
    assert limited.json()["error"] == TOO_MANY
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    reached = sandbox.events("client.rateLimit.reached")[0]["payload"]
    assert reached["dailyQuota"] == 3 and reached["quotaRemaining"] == 0
    sandbox.advance(24 * 3600)
    assert api.get("/companies").status_code == 200
    assert sandbox.events("client.rateLimit.reset")


def test_per_minute_ceiling(api, sandbox):
    sandbox.control("PUT", "rate-limits", {"perMinute": 2})
    statuses = [api.get("/companies").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_concurrent_calls_per_company_are_capped(api, sandbox):
    company = api.company()
    sandbox.control("PUT", "rate-limits", {"concurrentPerCompany": 2})
    sandbox.control("PUT", "faults", {"latencyMs": 400})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: api.get(f"/companies/{company['id']}"), range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429]


def test_injected_errors_use_the_error_message_shape(api, sandbox):
    sandbox.control("PUT", "faults", {"errorRate": 1.0, "errorStatus": 503})
    response = api.get("/companies")
    assert response.status_code == 503 and response.json()["statusCode"] == 503
    sandbox.control("PUT", "faults", {"errorRate": 0.0})
    assert api.get("/companies").status_code == 200


def test_the_call_log_records_method_path_status_and_company(api, sandbox):
    company = api.company()
    api.get(f"/companies/{company['id']}")
    calls = sandbox.control("GET", "calls").json()
    assert [(c["method"], c["status"]) for c in calls] == [("POST", 200), ("GET", 200)]
    assert calls[1]["companyId"] == company["id"] and calls[1]["time"]


def test_control_api_validates_its_input(sandbox):
    response = sandbox.request("PUT", "/_sandbox/faults", json={"errorRate": 2})
    assert response.status_code == 400 and "errorRate" in response.json()["error"]
    assert (
        sandbox.request("GET", "/_sandbox/clock", headers={"Authorization": ""}).status_code == 401
    )


def test_state_survives_a_restart(tmp_path):
    first = start_sandbox(tmp_path, api_key="restart-key")
    try:
        company = first.request("POST", "/companies", json={"name": "Durable Ltd"}).json()
        first.control("PUT", "products/durable", {"name": "Durable", "dataTypes": ["invoices"]})
    finally:
        stop_sandbox(first)
    second = start_sandbox(tmp_path, api_key="restart-key")
    try:
        assert second.request("GET", f"/companies/{company['id']}").json()["name"] == "Durable Ltd"
        products = second.control("GET", "products").json()
        assert "durable" in {p["identifier"] for p in products}
    finally:
        stop_sandbox(second)


def test_it_refuses_a_non_loopback_host(tmp_path):
    import subprocess
    import sys

    from tests.plugins.sandbox import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", "0.0.0.0", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={"CODAT_API_KEY": "k", "PATH": ""},
        capture_output=True,
        timeout=20,
    )
    assert result.returncode != 0 and b"not a loopback address" in result.stderr
