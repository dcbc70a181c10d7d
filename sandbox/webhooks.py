"""Webhook events: who gets them, and signed delivery (Standard Webhooks) with Codat's retries.

A message is one event for one consumer. Its `webhook-id` (msg_...) never changes across retries,
which is what receivers deduplicate on. Delays between attempts are sandbox seconds, so a fast
clock compresses Codat's 28-hour schedule. The signature timestamp is real wall-clock time, because
receivers check it against their own clock (a 5-minute window).
"""

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import random
import secrets
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from sandbox.clock import iso
from sandbox.vocabulary import is_documented_event_type

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

log = logging.getLogger("sandbox.webhooks")

# Seconds after the previous failed attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_DELAYS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DELIVERY_TIMEOUT_SECONDS = 15.0
# An endpoint whose attempts have all failed for this long is disabled, as Svix does for Codat.
AUTO_DISABLE_AFTER_SECONDS = 5 * 24 * 3600
MAX_CONSUMERS = 50
EVENT_LOG_SIZE = 5000


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def tags_match(consumer: dict, company: dict | None) -> bool:
    wanted = consumer.get("companyTags") or []
    if not wanted:
        return True
    if company is None:
        return True
    present = {f"{key}:{value}" for key, value in (company.get("tags") or {}).items()}
    return any(tag in present for tag in wanted)


def is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class Dispatcher:
    def __init__(self, sandbox: "Sandbox"):
        self.sandbox = sandbox
        self.events: deque[dict] = deque(maxlen=EVENT_LOG_SIZE)
        self._tasks: set[asyncio.Task] = set()

    def emit(self, event_type: str, payload: dict, *, at: float, company: dict | None = None):
        """Create one event and queue a message for every consumer that wants it."""
        if not is_documented_event_type(event_type, self.sandbox.store.tables["product"]):
            # A sandbox bug, not a client error: Codat sends only the event types it documents.
            raise ValueError(f"{event_type} is not an event type Codat documents")
        envelope = {
            "id": str(uuid.uuid4()),
            "eventType": event_type,
            "generatedDate": iso(at),
            "payload": payload,
        }
        body = json.dumps(envelope, separators=(",", ":"))
        self.events.append({"eventType": event_type, "body": envelope, "at": iso(at)})
        faults = self.sandbox.settings["faults"]
        for consumer in self.sandbox.store.all("consumer"):
            if consumer.get("disabled") or event_type not in (consumer.get("eventTypes") or []):
                continue
            if not tags_match(consumer, company):
                continue
            first_attempt = at
            if faults.get("outOfOrderWebhooks"):
                # Hold each message a random few sandbox seconds so that later events overtake it.
                first_attempt += random.uniform(0, 10)
            message = {
                "id": "msg_" + uuid.uuid4().hex,
                "consumerId": consumer["id"],
                "eventType": event_type,
                "eventId": envelope["id"],
                "body": body,
                "state": "Pending",
                "attempts": [],
                "nextAttemptAt": first_attempt,
                "duplicate": bool(faults.get("duplicateWebhooks")),
                "createdAt": at,
            }
            self.sandbox.store.put("message", message["id"], message)
            self.sandbox.engine.schedule(first_attempt, "deliver", message["id"])

    def on_due(self, due: float, message_id: str) -> None:
        message = self.sandbox.store.get("message", message_id)
        if message is None or message["state"] != "Pending" or message["nextAttemptAt"] != due:
            return
        consumer = self.sandbox.store.get("consumer", message["consumerId"])
        if consumer is None:
            # Deleting an endpoint cancels its pending attempts.
            message["state"] = "Cancelled"
            self.sandbox.store.put("message", message_id, message)
            return
        if consumer.get("disabled"):
            return  # a disabled endpoint gets no attempts; the message stays pending
        message["state"] = "Sending"
        self.sandbox.store.put("message", message_id, message)
        task = asyncio.get_running_loop().create_task(self._attempt(message, consumer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, message: dict, consumer: dict) -> None:
        status, error = await self._post(message, consumer)
        if message.get("duplicate") and status is not None and 200 <= status < 300:
            # Duplicate-delivery fault: the same message (same webhook-id) arrives twice.
            await self._post(message, consumer)
        now = self.sandbox.clock.now()
        message["attempts"].append({"at": iso(now), "responseStatusCode": status, "error": error})
        if status is not None and 200 <= status < 300:
            message["state"] = "Success"
        elif len(message["attempts"]) >= len(RETRY_DELAYS):
            message["state"] = "Failure"
        else:
            message["state"] = "Pending"
            message["nextAttemptAt"] = now + RETRY_DELAYS[len(message["attempts"])]
            self.sandbox.engine.schedule(message["nextAttemptAt"], "deliver", message["id"])
        if self.sandbox.store.get("message", message["id"]) is not None:
            self.sandbox.store.put("message", message["id"], message)
        self._note_endpoint_outcome(consumer["id"], message["state"] == "Success", now)

    def _note_endpoint_outcome(self, consumer_id: str, delivered: bool, now: float) -> None:
        """A success clears the endpoint's failing streak; five days of failures disable it."""
        consumer = self.sandbox.store.get("consumer", consumer_id)
        if consumer is None or (delivered and "_failingSince" not in consumer):
            return
        if delivered:
            del consumer["_failingSince"]
        else:
            failing_since = consumer.setdefault("_failingSince", now)
            if now - failing_since >= AUTO_DISABLE_AFTER_SECONDS and not consumer.get("disabled"):
                consumer["disabled"] = True
                log.warning("endpoint %s disabled after 5 days of failed attempts", consumer_id)
        self.sandbox.store.put("consumer", consumer_id, consumer)

    async def _post(self, message: dict, consumer: dict) -> tuple[int | None, str | None]:
        url = consumer["url"]
        if not is_loopback_http(url):
            return None, "the sandbox delivers only to http:// loopback addresses"
        signed_at = datetime.now(UTC)
        signature = Webhook(consumer["_secret"]).sign(message["id"], signed_at, message["body"])
        headers = {
            "content-type": "application/json",
            "webhook-id": message["id"],
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signature,
            "user-agent": "codat-sandbox-webhooks/1",
        }
        try:
            status = await asyncio.wait_for(
                _http_post(url, message["body"].encode(), headers), DELIVERY_TIMEOUT_SECONDS
            )
            return status, None
        except TimeoutError:
            return None, "no response within 15 seconds"
        except (OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def drain(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


async def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """A minimal HTTP/1.1 POST (loopback only), so that delivery stays on the event loop."""
    parts = urlsplit(url)
    port = parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    reader, writer = await asyncio.open_connection(parts.hostname, port)
    try:
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
        lines = [f"POST {target} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        parts_of_status = status_line.decode("latin-1").split()
        if len(parts_of_status) < 2:
            raise ValueError("no HTTP status line in the response")
        return int(parts_of_status[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
