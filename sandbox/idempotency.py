"""Codat's `Idempotency-Key` (docs: using-the-api/write-data/idempotency).

A POST or PATCH that carries the header has its response kept for 90 minutes under that key; a
repeat with the same key and the same request gets the kept response without running again. The
same key while the first request is still running answers 409, and the same key with another
request (method, path, query or body) answers 422. The key must be a GUID.

Kept in memory, like the call log: a restart forgets the keys. Hand-written because it sits in
the sandbox's own ASGI gateway, which has to read the body before the handler and record the
response after it; no library models Codat's 409/422 rules.
"""

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from starlette.responses import JSONResponse

from sandbox.errors import error_body

KEPT_SECONDS = 90 * 60
HEADER = b"idempotency-key"
METHODS = ("POST", "PATCH")
MAX_KEYS = 50000


@dataclass
class Entry:
    fingerprint: str
    in_flight: bool = True
    expires_at: float | None = None
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class IdempotencyKeys:
    def __init__(self, clock):
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def clear(self) -> None:
        self._entries.clear()

    def _live(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        expired = entry is not None and entry.expires_at is not None
        if expired and entry.expires_at <= self.clock.now():
            del self._entries[key]
            return None
        return entry

    def _prune(self) -> None:
        # Keys are kept in the order they came, which is (nearly) the order they expire in.
        now = self.clock.now()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.expires_at is None or oldest.expires_at > now:
                break
            self._entries.popitem(last=False)
        while len(self._entries) > MAX_KEYS:
            self._entries.popitem(last=False)

    async def handle(self, scope, receive, send, app) -> None:
        """Run `app` for a POST/PATCH with an Idempotency-Key, or answer from what is kept."""
        keys = [value for name, value in scope["headers"] if name == HEADER]
        if len(keys) > 1:
            return await _refuse(400, "Only one Idempotency-Key header is allowed", scope, send)
        key = keys[0].decode("latin-1").strip()
        try:
            key = str(uuid.UUID(key))
        except ValueError:
            reason = "Idempotency-Key: must be a GUID"
            return await _refuse(
                400, f"Error processing request - not valid. {reason}", scope, send
            )
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            b"\n".join(
                [scope["method"].encode(), scope["path"].encode(), scope["query_string"], body]
            )
        ).hexdigest()
        entry = self._live(key)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                reason = "This Idempotency-Key was used with a different request"
                return await _refuse(422, reason, scope, send)
            if entry.in_flight:
                reason = "A request with this Idempotency-Key is still in progress"
                return await _refuse(409, reason, scope, send)
            await send(
                {"type": "http.response.start", "status": entry.status, "headers": entry.headers}
            )
            return await send({"type": "http.response.body", "body": entry.body})
        entry = Entry(fingerprint)
        self._entries[key] = entry
        self._prune()
        recorded = {"status": 0, "headers": [], "body": []}

        async def replay_body():
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message):
            if message["type"] == "http.response.start":
                recorded["status"] = message["status"]
                recorded["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                recorded["body"].append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_body, recording_send)
        finally:
            status = recorded["status"]
            if status == 0 or status >= 500 or status == 429:
                # Not processed (or not known to be): a retry with the key must run again.
                self._entries.pop(key, None)
            else:
                entry.in_flight = False
                entry.expires_at = self.clock.now() + KEPT_SECONDS
                entry.status = status
                entry.headers = [
                    (name, value)
                    for name, value in recorded["headers"]
                    if not name.lower().startswith(b"x-rate-limit")
                ]
                entry.body = b"".join(recorded["body"])


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _refuse(status: int, error: str, scope, send) -> None:
    response = JSONResponse(error_body(status, error), status_code=status)
    await response(scope, None, send)
