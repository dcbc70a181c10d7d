"""Codat's Idempotency-Key on POST and PATCH: the first response kept 90 minutes per key, 409
while the first request is in flight, 422 for the same key with another request."""

import concurrent.futures
import uuid

import pytest

pytestmark = pytest.mark.sandbox

KEPT_SECONDS = 90 * 60


def create(api, key, name="Once Ltd", **kwargs):
    return api.post("/companies", json={"name": name}, headers={"Idempotency-Key": key}, **kwargs)


def company_names(api) -> list[str]:
    return [c["name"] for c in api.get("/companies").json()["results"]]


def test_a_repeat_with_the_same_key_gets_the_first_response_without_running_again(api, sandbox):
    key = str(uuid.uuid4())
    first = create(api, key)
    repeat = create(api, key)

    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json()
    assert company_names(api) == ["Once Ltd"]
    assert len(sandbox.events("company.created")) == 1
    # PATCH is covered as well.
    path = f"/companies/{first.json()['id']}"
    patch_key = {"Idempotency-Key": str(uuid.uuid4())}
    renamed = api.patch(path, json={"name": "Renamed Ltd"}, headers=patch_key)
    api.patch(path, json={"name": "Changed Meanwhile"})
    replayed = api.patch(path, json={"name": "Renamed Ltd"}, headers=patch_key)
    assert replayed.json() == renamed.json()
    assert api.get(path).json()["name"] == "Changed Meanwhile"


def test_the_same_key_with_another_body_is_422(api):
    key = str(uuid.uuid4())
    assert create(api, key).status_code == 200

    other = create(api, key, name="Other Ltd", contract=False)

    assert other.status_code == 422
    assert "different request" in other.json()["error"]
    assert company_names(api) == ["Once Ltd"]


def test_the_same_key_while_the_first_request_is_in_flight_is_409(api, sandbox):
    key = str(uuid.uuid4())
    # Each request is processed for 1.5 s; two sent at once overlap.
    sandbox.control("PUT", "faults", {"latencyMs": 1500})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: create(api, key, contract=False), range(2)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409]
    done, refused = sorted(responses, key=lambda r: r.status_code)
    assert "in progress" in refused.json()["error"]
    sandbox.control("PUT", "faults", {"latencyMs": 0})
    assert create(api, key).json() == done.json()
    assert company_names(api) == ["Once Ltd"]


def test_a_kept_response_expires_after_90_minutes(api, sandbox):
    key = str(uuid.uuid4())
    first = create(api, key)
    sandbox.advance(KEPT_SECONDS - 60)
    assert create(api, key).json()["id"] == first.json()["id"]

    sandbox.advance(120)
    later = create(api, key)

    assert later.json()["id"] != first.json()["id"]
    assert company_names(api) == ["Once Ltd", "Once Ltd"]


def test_a_failed_attempt_is_not_kept_and_a_bad_key_is_refused(api, sandbox):
    key = str(uuid.uuid4())
    sandbox.control("PUT", "faults", {"errorRate": 1.0})
    assert create(api, key).status_code == 500
    sandbox.control("PUT", "faults", {"errorRate": 0.0})
    assert create(api, key).status_code == 200  # the retry runs

    bad = create(api, "not-a-guid", contract=False)
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["error"]
    assert company_names(api) == ["Once Ltd"]
