"""The sandbox clock: sandbox time runs `speed` times faster than real time and can be advanced.

Everything time-driven (datasets, schedules, webhook retries, quota resets) is expressed in sandbox
seconds, so 12 sandbox hours can pass in a few real seconds.
"""

import time
from datetime import UTC, datetime


class SandboxClock:
    def __init__(self, start: float | None = None, speed: float = 1.0):
        self._anchor_sandbox = time.time() if start is None else start
        self._anchor_real = time.monotonic()
        self.speed = float(speed)

    def now(self) -> float:
        """Sandbox time as Unix seconds."""
        return self._anchor_sandbox + (time.monotonic() - self._anchor_real) * self.speed

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        # Re-anchor so that changing speed never moves time backwards or forwards.
        self._anchor_sandbox = self.now()
        self._anchor_real = time.monotonic()
        self.speed = float(speed)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock never goes backwards")
        self._anchor_sandbox += seconds

    def real_seconds_until(self, sandbox_ts: float) -> float:
        return max(0.0, (sandbox_ts - self.now()) / self.speed)


def iso(ts: float | None) -> str | None:
    """Codat's date-time format: UTC with milliseconds and a Z."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def next_utc_midnight(ts: float) -> float:
    return (int(ts) // 86400 + 1) * 86400
