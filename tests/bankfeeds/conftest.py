import pytest


@pytest.fixture
def no_celery(monkeypatch):
    """What services would hand to Celery, collected here instead."""
    sent: dict[str, list] = {"operations": [], "accounts": []}
    monkeypatch.setattr(
        "operations.queue.enqueue",
        lambda ids, countdown=None: sent["operations"].append(list(ids)),
    )
    monkeypatch.setattr(
        "bankfeeds.services._send", lambda task, *args: sent["accounts"].append(args[0])
    )
    return sent
