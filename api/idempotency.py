"""`Idempotency-Key` on POST, as Codat answers it: a repeat of the same key and body gets the
first response again, the same key with another body 422, and a repeat while the first is
still being answered 409.

Kept in Redis per caller (a key of one API key never meets another's), for
API_IDEMPOTENCY_TTL_SECONDS. Only a successful (2xx) answer is remembered: a refused request
changed nothing, so trying it again is safe and may succeed.
"""

import functools
import hashlib
import json

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.response import Response

from api.problems import Conflict, Unprocessable
from api.ratelimit import client_of
from core.redis_connection import redis_client

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Long enough for any request the API answers; a request that dies mid-way frees its key then.
IN_FLIGHT_SECONDS = 120


class IdempotencyUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Idempotency-Key cannot be checked now; try again shortly."
    default_code = "idempotency_unavailable"


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _storage_key(request, idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"api:idempotency:{client_of(request)}:{digest}"


def idempotent(handler):
    """Wrap a view's `post`: answered after authentication, permissions and the rate limit."""

    @functools.wraps(handler)
    def post(view, request, *args, **kwargs):
        idempotency_key = request.headers.get(HEADER)
        if idempotency_key is None:
            return handler(view, request, *args, **kwargs)
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError({HEADER: f"Give 1 to {MAX_KEY_LENGTH} characters."})
        fingerprint = _fingerprint(request)  # parses the body: a malformed one fails here
        storage_key = _storage_key(request, idempotency_key)
        redis = redis_client()
        claim = json.dumps({"fingerprint": fingerprint, "status": None})
        try:
            claimed = redis.set(storage_key, claim, nx=True, ex=IN_FLIGHT_SECONDS)
            stored = None if claimed else json.loads(redis.get(storage_key) or "null")
        except RedisError:
            # Without the store a retry could repeat the write: refuse rather than guess.
            raise IdempotencyUnavailable() from None
        if not claimed:
            if stored is None:  # expired between the two calls: treat as new next time
                raise Conflict("This Idempotency-Key is being used; try again.")
            if stored["fingerprint"] != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used with another request body or endpoint."
                )
            if stored["status"] is None:
                raise Conflict("A request with this Idempotency-Key is still being answered.")
            return Response(
                stored["body"], status=stored["status"], headers={"Idempotent-Replayed": "true"}
            )
        try:
            response = handler(view, request, *args, **kwargs)
        except BaseException:
            redis.delete(storage_key)
            raise
        if 200 <= response.status_code < 300:
            redis.set(
                storage_key,
                json.dumps(
                    {
                        "fingerprint": fingerprint,
                        "status": response.status_code,
                        "body": response.data,
                    },
                    default=str,
                ),
                ex=settings.API_IDEMPOTENCY_TTL_SECONDS,
            )
        else:
            redis.delete(storage_key)
        return response

    return post
