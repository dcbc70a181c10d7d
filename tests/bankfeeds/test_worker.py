"""10,000 transactions over 5 accounts through a real Celery worker against the sandbox over
HTTP, with 5% of Codat's answers an injected 5xx, the first pushes timing out and the worker
killed mid-run: the sandbox ends up holding each transaction exactly once, in date order per
account, and nothing the rules refuse was sent.

No webhook reaches this process, so pushes are followed by polling; the test plays beat
(pushes_round and the operations sweeper).
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction
from bankfeeds.services import pushes_round, source_account_create, transactions_submit
from operations import limiter
from operations.sweeper import operations_sweep
from tests.bankfeeds.helpers import ACCOUNT, run_due_operations, transactions
from tests.bankfeeds.test_flow import _mapped, _onboarded, _sandbox_pushes
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ACCOUNTS = 5
PER_ACCOUNT = 2000


@pytest.fixture
def mapped_accounts(sandbox, operations_env, settings, monkeypatch):
    """Five mapped accounts on one QuickBooks Online connection, set up in this process before
    the worker starts; then each account's transactions, and what the rules refuse."""
    sandbox.control("PUT", "rate-limits", {"perMinute": 3000})
    limiter.configure(per_minute=3000)
    sandbox.control("PUT", "push", {"delaySeconds": 1, "outcome": "Success"})
    settings.BANK_FEEDS_POLL_PENDING_SECONDS = 1
    now = timezone.now()
    with monkeypatch.context() as local:
        local.setattr("operations.queue.enqueue", lambda ids, countdown=None: len(ids))
        connection = _onboarded(sandbox)
        accounts = []
        for number in range(ACCOUNTS):
            account = source_account_create(
                connection=connection, data={**ACCOUNT, "id": f"acc-{number}"}
            )
            run_due_operations()
            _mapped(sandbox, connection, f"acc-{number}", now - timedelta(days=2), target=None)
            account.refresh_from_db()
            assert account.mapping_status == "connected"
            accounts.append(account)
    expected, refused = {}, set()
    for number, account in enumerate(accounts):
        rows = transactions(
            PER_ACCOUNT,
            start=now - timedelta(days=5),
            step=timedelta(minutes=2),
            prefix=f"a{number}",
        )
        # QuickBooks Online takes nothing over 7 days before the feed start, nor the future.
        too_old = {
            "id": f"a{number}-old",
            "date": (now - timedelta(days=10)).isoformat(),
            "amount": 1,
        }
        future = {
            "id": f"a{number}-future",
            "date": (now + timedelta(days=2)).isoformat(),
            "amount": 1,
        }
        # Submitted in two halves, newest half first: the pusher still sends oldest first.
        half = PER_ACCOUNT // 2
        transactions_submit(account=account, rows=[*rows[half:], future])
        transactions_submit(account=account, rows=[too_old, *rows[:half]])
        expected[account.account_id] = [row["id"] for row in rows]
        refused |= {too_old["id"], future["id"]}
    return connection, expected, refused


def test_pushes_survive_server_errors_and_a_killed_worker_each_transaction_landing_once(
    sandbox, mapped_accounts, operations_worker
):
    connection, expected, refused = mapped_accounts
    sandbox.control("PUT", "push", {"outcome": "TimedOut"})
    sandbox.control("PUT", "faults", {"errorRate": 0.05, "errorStatus": 503})
    total = ACCOUNTS * PER_ACCOUNT
    last_beat = 0.0

    def synced() -> int:
        return BankTransaction.objects.filter(state="synced").count()

    def beat() -> None:
        nonlocal last_beat
        if time.monotonic() - last_beat >= 1.0:
            pushes_round()
            operations_sweep()
            last_beat = time.monotonic()

    def beat_until(count: int):
        def done() -> bool:
            beat()
            return synced() >= count

        return done

    def timed_out() -> bool:
        beat()
        return BankFeedPush.objects.filter(status="timed_out").exists()

    # when the first push times out, Codat takes pushes again, and the worker is killed once
    # some have landed, then started again
    wait_until(
        timed_out,
        timeout=60,
        interval=0.2,
        message="no push timed out",
    )
    sandbox.control("PUT", "push", {"outcome": "Success"})
    wait_until(beat_until(3000), timeout=120, interval=0.2, message=lambda: f"{synced()} synced")
    operations_worker.kill()
    assert synced() < total
    operations_worker.start()
    wait_until(beat_until(total), timeout=300, interval=0.2, message=lambda: f"{synced()} synced")

    # then the sandbox holds each transaction once, in date order per account
    sandbox.control("PUT", "faults", {"errorRate": 0})
    remote = [p for p in _sandbox_pushes(sandbox, connection.company) if p["status"] == "Success"]
    landed: dict[str, list[dict]] = {}
    for push in remote:
        landed.setdefault(push["data"]["accountId"], []).extend(push["data"]["transactions"])
    for account_id, ids in expected.items():
        sent = landed[account_id]
        assert [t["id"] for t in sent] == ids
        assert [t["date"] for t in sent] == sorted(t["date"] for t in sent)
    every_sent = {
        t["id"]
        for push in _sandbox_pushes(sandbox, connection.company)
        for t in push["data"]["transactions"]
    }
    assert not every_sent & refused
    assert all(len(push["data"]["transactions"]) <= 1000 for push in remote)
    timed_out_pushes = [
        p for p in _sandbox_pushes(sandbox, connection.company) if p["status"] == "TimedOut"
    ]
    assert timed_out_pushes  # and their transactions landed later, once (above)
    states = dict(
        BankTransaction.objects.filter(transaction_id__in=refused).values_list(
            "transaction_id", "state"
        )
    )
    assert {tid for tid, state in states.items() if state == "set_aside"} == {
        tid for tid in refused if tid.endswith("-old")
    }
    assert {tid for tid, state in states.items() if state == "waiting"} == {
        tid for tid in refused if tid.endswith("-future")
    }
