"""The one way tests wait for something another process or thread does."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition did not hold",
) -> T:
    """Call `condition` every `interval` seconds until it returns something true; return that.

    After `timeout` seconds, fail with `message` and how long was waited (a callable message is
    asked then, so it can say how far things got). An exception from `condition` ends the wait
    at once: a process that exited raises rather than being waited for in vain.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} within {timeout:g} s")
        time.sleep(interval)
