"""Rate limits (daily quota, per minute, concurrency), injected faults, the call log, restarts."""

import concurrent.futures

import pytest

from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

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


def test_settings_saved_before_a_setting_existed_get_its_default(tmp_path):
    import json
    import sqlite3

    first = start_sandbox(tmp_path, api_key="restart-key")
    try:
        first.control("PUT", "account", {"plan": "Free"})
        first.control("PUT", "push", {"delaySeconds": 7})
    finally:
        stop_sandbox(first)
    # given: a state file written before the account settings existed
    with sqlite3.connect(tmp_path / "sandbox.sqlite3") as db:
        (body,) = db.execute(
            "SELECT body FROM records WHERE kind = 'meta' AND id = 'settings'"
        ).fetchone()
        saved = json.loads(body)
        del saved["account"]
        db.execute(
            "UPDATE records SET body = ? WHERE kind = 'meta' AND id = 'settings'",
            (json.dumps(saved),),
        )
    second = start_sandbox(tmp_path, api_key="restart-key")
    try:
        assert second.control("GET", "account").json() == {"plan": "Paid"}
        assert second.control("GET", "push").json()["delaySeconds"] == 7
        assert second.request("POST", "/companies", json={"name": "After Ltd"}).status_code == 200
    finally:
        stop_sandbox(second)


def test_it_refuses_a_non_loopback_host(tmp_path):
    import subprocess
    import sys

    from tests.plugins.codat_sandbox import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", "0.0.0.0", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={"CODAT_API_KEY": "k", "PATH": ""},
        capture_output=True,
        timeout=20,
    )
    assert result.returncode != 0 and b"not a loopback address" in result.stderr


def test_the_free_plan_allows_fifty_companies_and_no_hourly_schedule(api, sandbox):
    assert sandbox.control("GET", "account").json() == {"plan": "Paid"}
    bad = sandbox.request("PUT", "/_sandbox/account", json={"plan": "Gold"})
    assert bad.status_code == 400 and "plan" in bad.json()["error"]
    sandbox.control("PUT", "account", {"plan": "Free"})
    for number in range(50):
        api.company(f"Company {number}")
    refused = api.post("/companies", json={"name": "Fifty-first"})
    assert refused.status_code == 402
    assert refused.json()["error"] == "CompanyValidationException: Company limit exceeded"
    assert len(api.get("/companies", params={"pageSize": 100}).json()["results"]) == 50

    not_hourly = "SyncSettingsValidationException: Sync schedule not allowed"
    hourly = {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 1, "syncOrder": 0}
    daily = {**hourly, "syncSchedule": 24}
    client_id = api.get("/profile/syncSettings").json()["clientId"]
    company_id = api.get("/companies").json()["results"][0]["id"]
    for path, owner in (
        ("/profile/syncSettings", {"clientId": client_id}),
        (f"/companies/{company_id}/syncSettings", {"companyId": company_id}),
    ):
        body = {**owner, "overridesDefaults": True, "settings": [daily, hourly]}
        refused = api.post(path, json=body)
        assert refused.status_code == 402, path
        assert refused.json()["error"] == not_hourly
        assert api.post(path, json={**body, "settings": [daily]}).status_code == 204

    # Paid again: both go through
    sandbox.control("PUT", "account", {"plan": "Paid"})
    assert api.post("/companies", json={"name": "Fifty-first"}).status_code == 200
    body = {"clientId": client_id, "overridesDefaults": True, "settings": [hourly]}
    assert api.post("/profile/syncSettings", json=body).status_code == 204
