"""The sandbox as one object: state, clock, settings, engine, webhooks, rate limits, call log."""

import time
import uuid
from collections import deque
from pathlib import Path

from sandbox.catalogue import default_sync_settings
from sandbox.clock import SandboxClock
from sandbox.engine import Engine
from sandbox.idempotency import IdempotencyKeys
from sandbox.ratelimit import RateLimiter
from sandbox.render import company_reference
from sandbox.settings import defaults
from sandbox.store import Store, public
from sandbox.webhooks import Dispatcher

CALL_LOG_SIZE = 20000


class Sandbox:
    def __init__(
        self,
        state_dir: Path,
        *,
        api_key: str,
        public_url: str,
        overrides: dict | None = None,
    ):
        self.api_key = api_key
        self.public_url = public_url.rstrip("/")
        self.overrides = overrides or {}
        self.store = Store(state_dir)
        saved_clock = self.store.get("meta", "clock")
        start = None
        if saved_clock is not None:
            # While the process was down, sandbox time passed at real speed.
            start = saved_clock["sandboxNow"] + max(0.0, time.time() - saved_clock["wallNow"])
        saved_settings = self.store.get("meta", "settings")
        # Saved settings go over the defaults, so a state file from before a setting existed
        # still has every one.
        self.settings = defaults(saved_settings) if saved_settings else defaults(self.overrides)
        if "speed" in self.overrides and saved_settings is None:
            self.settings["speed"] = self.overrides["speed"]
        self.clock = SandboxClock(start, self.settings["speed"])
        self.calls: deque[dict] = deque(maxlen=CALL_LOG_SIZE)
        self.engine = Engine(self)
        self.dispatcher = Dispatcher(self)
        self.limiter = RateLimiter(self)
        self.idempotency = IdempotencyKeys(self.clock)
        self.engine.rebuild()

    @property
    def client_id(self) -> str:
        meta = self.store.get("meta", "client")
        if meta is None:
            meta = self.store.put("meta", "client", {"clientId": str(uuid.uuid4())})
        return meta["clientId"]

    def save_settings(self) -> None:
        self.store.put("meta", "settings", self.settings)

    def save_clock(self) -> None:
        self.store.put("meta", "clock", {"sandboxNow": self.clock.now(), "wallNow": time.time()})

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.settings["speed"] = speed
        self.save_settings()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.engine.run_due()
        self.save_clock()

    def on_free_plan(self) -> bool:
        return self.settings["account"]["plan"] == "Free"

    def client_sync_settings(self) -> dict:
        saved = self.store.get("meta", "syncSettings")
        if saved is not None:
            return saved
        return {
            "clientId": self.client_id,
            "settings": default_sync_settings(),
            "overridesDefaults": False,
        }

    def reset(self) -> None:
        """Forget every company, consumer, product and fault; the clock keeps its current time."""
        self.store.clear()
        self.settings = defaults(self.overrides)
        self.clock.set_speed(self.settings["speed"])
        self.save_settings()
        self.save_clock()
        self.dispatcher.events.clear()
        self.limiter.reset()
        self.idempotency.clear()
        self.calls.clear()
        self.engine.rebuild()

    def bank_feed_event(self, event_type: str, account: dict, at: float) -> None:
        from sandbox.bank_feeds import source_account_body

        company = self.store.get("company", account["_companyId"])
        if company is None:
            return
        payload = {
            "referenceCompany": company_reference(company),
            "connectionId": account["_connectionId"],
            "companyId": company["id"],
            "sourceAccount": source_account_body(account),
        }
        self.dispatcher.emit(event_type, payload, at=at, company=company)


__all__ = ["Sandbox", "public"]
