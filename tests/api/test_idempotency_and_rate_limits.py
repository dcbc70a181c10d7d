"""Idempotency-Key on POST (replay, 422 on another body, 409 in flight) and the per-key limit."""

import json
from types import SimpleNamespace

import pytest

from api.idempotency import _fingerprint, _storage_key
from api.models import ApiKey
from consent.models import ConsentRequest
from core.redis_connection import redis_client
from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def test_the_same_key_and_body_get_the_first_response_and_write_once(keys, world):
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    body = {"products": ["expenses"]}
    first = call("POST", url, keys["consent"], body, **{"Idempotency-Key": "req-1"})
    again = call("POST", url, keys["consent"], body, **{"Idempotency-Key": "req-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ConsentRequest.objects.filter(company=world.company).count() == 1


def test_the_same_key_with_another_body_is_422_and_writes_nothing(keys, world):
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    call("POST", url, keys["consent"], {"products": ["expenses"]}, **{"Idempotency-Key": "k"})
    other = call(
        "POST", url, keys["consent"], {"products": ["cash-flow"]}, **{"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert ConsentRequest.objects.filter(company=world.company).count() == 1


def test_a_key_still_in_flight_is_409(keys, world):
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    body = {"products": ["expenses"]}
    # What the first request leaves in Redis while it is being answered.
    key = ApiKey.objects.get(name="consent")
    first = SimpleNamespace(method="POST", path=url, data=body, auth=key, user=key.user)
    redis_client().set(
        _storage_key(first, "slow"),
        json.dumps({"fingerprint": _fingerprint(first), "status": None}),
    )
    response = call("POST", url, keys["consent"], body, **{"Idempotency-Key": "slow"})
    assert response.status_code == 409
    assert "still being answered" in response.json()["detail"]
    assert not ConsentRequest.objects.filter(company=world.company).exists()


def test_keys_of_two_callers_never_meet(keys, world):
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    body = {"products": ["expenses"]}
    call("POST", url, keys["consent"], body, **{"Idempotency-Key": "shared"})
    call("POST", url, keys["all"], body, **{"Idempotency-Key": "shared"})
    assert ConsentRequest.objects.filter(company=world.company).count() == 2


def test_a_refused_request_is_not_remembered(keys, world):
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    refused = call("POST", url, keys["consent"], {"products": ["nope"]}, **{"Idempotency-Key": "r"})
    assert refused.status_code == 422
    fixed = call(
        "POST", url, keys["consent"], {"products": ["expenses"]}, **{"Idempotency-Key": "r"}
    )
    assert fixed.status_code == 201


def test_over_the_limit_is_429_with_retry_after_and_ratelimit_headers(keys, world, settings):
    settings.API_RATE_LIMIT = "3/m"
    answers = [call("GET", "/api/v1/products/", keys["read"]) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0]["RateLimit-Limit"] == "3"
    assert answers[0]["RateLimit-Remaining"] == "2"
    assert answers[0]["RateLimit-Policy"] == '"default";q=3;w=60'
    limited = answers[3]
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited["RateLimit-Remaining"] == "0"
    # Another key has its own budget.
    assert call("GET", "/api/v1/products/", keys["all"]).status_code == 200


def test_without_redis_a_keyed_post_is_refused_and_the_rate_limit_is_skipped(keys, world, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    url = f"/api/v1/companies/{world.company.codat_id}/consent/requests/"
    body = {"products": ["expenses"]}
    refused = call("POST", url, keys["consent"], body, **{"Idempotency-Key": "no-redis"})
    assert refused.status_code == 503
    assert refused["Content-Type"] == "application/problem+json"
    assert not ConsentRequest.objects.filter(company=world.company).exists()
    # Without a key the write goes ahead, unlimited: Redis only counts and remembers.
    assert call("POST", url, keys["consent"], body).status_code == 201
