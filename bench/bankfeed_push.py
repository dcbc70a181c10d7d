"""Bank-feed pushes through the real engine: services -> Redis -> a Celery worker -> the sandbox.

Starts its own sandbox (temporary state, random key) whose ceiling is L requests a second, onboards
one QuickBooks Online bank-feeds company with A mapped accounts (not measured), stores T
transactions per account, then starts a worker and measures how fast the transactions reach the
sandbox in Success pushes. Beat is played by a thread (the pusher's round and the sweeper once a
second). Two ways of following a push to its outcome, each measured on a fresh set-up:

- polling: no webhook receiver; the beat round asks Codat about every Pending push (each push
  costs a second call, and waits for the next round, up to a second, before it is asked about);
- webhooks: the portal's receiver runs under gunicorn (production settings), the sandbox has a
  consumer for `bankTransactions.write.*` pointed at it, and the worker applies each event: the
  account's next push starts as soon as the outcome arrives. Polling stays the fallback only for
  a push Pending longer than BANK_FEEDS_POLL_PENDING_SECONDS (60 s).

Prints, per way: transactions landed a second against the ceiling L x 1,000 (every call a push
of the most Codat takes), their ratio, and the calls the run made (pushes, polls, retries).

Usage: .venv/bin/python bench/bankfeed_push.py [--accounts 10] [--transactions 5000] [--rate 10]
       [--concurrency 4] [--push-delay 0] [--follow both|polling|webhooks]
Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bankfeed_bench, created
if missing), REDIS_URL (default redis://127.0.0.1:6379/9; the bench flushes that database).
"""

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bankfeed_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--transactions", type=int, default=5000, help="per account")
    parser.add_argument("--rate", type=float, default=10.0, help="ceiling L, requests a second")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument("--push-delay", type=float, default=0.0, help="sandbox Pending seconds")
    parser.add_argument("--follow", choices=("both", "polling", "webhooks"), default="both")
    args = parser.parse_args()

    from bench.fleet_add import ensure_postgres_database

    ensure_postgres_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from tests.plugins.celery_worker import CeleryWorker, point_celery_at
    from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    from portal.celery import app

    point_celery_at(app, os.environ["REDIS_URL"])
    per_minute = int(args.rate * 60)
    sandbox = start_sandbox(Path(tempfile.mkdtemp(prefix="bench-sandbox-")))
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    worker_env = {
        **os.environ,
        "CODAT_BASE_URL": sandbox.base_url,
        "CODAT_API_KEY": sandbox.api_key,
    }
    follows = ("polling", "webhooks") if args.follow == "both" else (args.follow,)
    results = {}
    try:
        for follow in follows:
            connection = set_up(sandbox, args)
            sandbox.control("PUT", "rate-limits", {"perMinute": per_minute})
            from operations import limiter

            limiter.configure(per_minute=per_minute)
            if follow == "polling":
                # Every Pending push is asked about at the next round.
                settings.BANK_FEEDS_POLL_PENDING_SECONDS = 0
                results[follow] = push_run(sandbox, app, worker_env, connection, args, CeleryWorker)
            else:
                # The fallback only: a webhook that never came.
                settings.BANK_FEEDS_POLL_PENDING_SECONDS = 60
                with webhook_receiver(sandbox):
                    results[follow] = push_run(
                        sandbox, app, worker_env, connection, args, CeleryWorker
                    )
    finally:
        stop_sandbox(sandbox)

    ceiling = args.rate * 1000
    print()
    print(
        f"bank-feed pushes, {args.accounts} accounts x {args.transactions:,} transactions,"
        f" ceiling L = {args.rate:g} req/s, worker -c {args.concurrency},"
        f" sandbox Pending {args.push_delay:g} s"
    )
    for follow, result in results.items():
        print(f"-- outcomes by {follow}")
        print(f"wall: {result['wall']:.1f} s for {result['landed']:,} transactions landed")
        print(
            f"calls: {result['pushes']} pushes ({result['failed_calls']} answered 5xx/429),"
            f" {result['polls']} polls, {result['other']} other;"
            f" {result['webhooks']} write webhooks delivered"
        )
        print(
            f"medians: {result['slot_p50']:.2f} s waiting for the limiter's slot,"
            f" {result['outcome_p50']:.2f} s push to outcome,"
            f" {result['gap_p50']:.2f} s outcome to the account's next push;"
            f" an account's turn {result['turn_p50']:.2f} s"
        )
        if result["turn_p50"]:
            # Codat takes one push per account at a time: the accounts' turns bound the calls.
            bound = min(args.accounts / result["turn_p50"], args.rate)
            print(
                f"gap left: one push in flight per account, so {args.accounts} accounts make at"
                f" most {args.accounts} / {result['turn_p50']:.2f} s = {bound:.1f} pushes/s of"
                f" the {args.rate:g} allowed ({bound / args.rate:.2f}); a last, part-full push"
                f" per account carries fewer than 1,000"
            )
        print(f"transactions/s reaching the sandbox: {result['landed'] / result['wall']:.1f}")
        print(f"ceiling (L x 1,000 per push): {ceiling:,.0f} /s")
        print(f"ratio: {result['landed'] / result['wall'] / ceiling:.3f}")
    if len(results) == 2:
        before, after = (r["landed"] / r["wall"] / ceiling for r in results.values())
        print(f"ratio before (polling) -> after (webhooks): {before:.3f} -> {after:.3f}")
    load = os.getloadavg()
    print(f"machine load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


@contextlib.contextmanager
def webhook_receiver(sandbox):
    """The portal's webhook endpoint under gunicorn, and a sandbox consumer of the write events
    pointed at it (the consumer's secret is the receiver's)."""
    from tests.ports import free_port
    from tests.webhooks.servers import gunicorn_portal

    port = free_port()
    consumer = sandbox.request(
        "POST",
        "/webhooks",
        json={
            "url": f"http://127.0.0.1:{port}/webhooks/codat/",
            "eventTypes": [
                "bankTransactions.write.successful",
                "bankTransactions.write.unsuccessful",
            ],
        },
    )
    consumer.raise_for_status()
    consumer_id = consumer.json()["id"]
    try:
        with gunicorn_portal(
            database_url=os.environ["DATABASE_URL"],
            redis_url=os.environ["REDIS_URL"],
            secrets=[sandbox.secret(consumer_id)],
            workers=2,
            port=port,
        ):
            yield
    finally:
        sandbox.request("DELETE", f"/webhooks/{consumer_id}")


def set_up(sandbox, args):
    from django.utils import timezone

    from bankfeeds.models import BankFeedConnection, BankFeedPush, BankTransaction, SourceAccount
    from bankfeeds.services import (
        bank_feed_company_onboard,
        bank_feed_mapping_read,
        source_account_create,
        transactions_submit,
    )
    from operations.models import Operation
    from tests.bankfeeds.helpers import ACCOUNT, run_due_operations, transactions

    print("-- setting up (not measured)", flush=True)
    BankTransaction.objects.all().delete()
    BankFeedPush.objects.all().delete()
    SourceAccount.objects.all().delete()
    BankFeedConnection.objects.all().delete()
    Operation.objects.all().delete()
    sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 1_000_000_000})
    sandbox.control("PUT", "push", {"delaySeconds": args.push_delay, "outcome": "Success"})
    import operations.queue

    send = operations.queue.enqueue
    operations.queue.enqueue = lambda ids, countdown=None: len(ids)  # rows run here
    import bankfeeds.services

    send_account = bankfeeds.services._send
    bankfeeds.services._send = lambda task, *a: None
    try:
        operation = bank_feed_company_onboard(name="Bench bank customer", platform="hcws")
        run_due_operations()
        operation.refresh_from_db()
        connection = BankFeedConnection.objects.get(company=operation.company)
        from codat.client import CodatClient

        client = CodatClient(sandbox.base_url, sandbox.api_key)
        now = timezone.now()
        for number in range(args.accounts):
            source_account_create(connection=connection, data={**ACCOUNT, "id": f"acc-{number}"})
            run_due_operations()
            client.set_bank_account_mapping(
                str(connection.company.codat_id),
                str(connection.codat_id),
                f"acc-{number}",
                feed_start_date=(now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S"),
            )
        client.close()
        sandbox.advance(10)  # new target accounts connect on the sandbox's clock
        bank_feed_mapping_read(connection=connection)
        run_due_operations()
        for account in SourceAccount.objects.filter(connection=connection):
            assert account.mapping_status == "connected", account.mapping_status
            rows = transactions(
                args.transactions,
                start=now - timedelta(days=5),
                step=timedelta(days=5) / args.transactions,
                prefix=account.account_id,
            )
            for start in range(0, len(rows), 5000):
                transactions_submit(account=account, rows=rows[start : start + 5000])
    finally:
        operations.queue.enqueue = send
        bankfeeds.services._send = send_account
    return connection


def push_run(sandbox, app, worker_env, connection, args, worker_class) -> dict:
    from bankfeeds.models import BankTransaction
    from bankfeeds.services import pushes_round
    from operations.sweeper import operations_sweep

    total = args.accounts * args.transactions
    worker = worker_class(
        app=app,
        env=worker_env,
        concurrency=args.concurrency,
        log_path=REPO / "var" / "bench-bankfeed-worker.log",
        name="bench",
    )
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            pushes_round()
            operations_sweep()
            time.sleep(1.0)

    print(f"-- pushing {total:,} transactions", flush=True)
    started_wall = time.time()
    worker.start()
    started = time.monotonic()
    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        while BankTransaction.objects.filter(state="synced").count() < total:
            time.sleep(0.2)
        wall = time.monotonic() - started
    finally:
        stop.set()
        beater.join()
        worker.stop()
    calls = [
        c for c in sandbox.request("GET", "/_sandbox/calls").json() if c["realTime"] >= started_wall
    ]
    pushes = [c for c in calls if c["method"] == "POST" and c["path"].endswith("/bankTransactions")]
    polls = [c for c in calls if c["method"] == "GET" and "/push/" in c["path"]]
    webhooks = [
        m
        for m in sandbox.request("GET", "/_sandbox/webhooks/messages").json()
        if ".write." in (m.get("eventType") or "")
    ]
    return {
        "webhooks": len(webhooks),
        **push_timings(),
        "wall": wall,
        "landed": total,
        "pushes": len(pushes),
        "failed_calls": sum(1 for c in pushes if c["status"] >= 429),
        "polls": len(polls),
        "other": len(calls) - len(pushes) - len(polls),
    }


def push_timings() -> dict[str, float]:
    """Medians over the run's pushes: created -> sent (the wait for the fleet limiter's slot),
    sent -> outcome recorded, an outcome -> the same account's next push created (the pusher's
    own turn-around), and one push created -> the account's next (the account's whole turn)."""
    from bankfeeds.models import BankFeedPush

    pushes = list(
        BankFeedPush.objects.filter(status="success")
        .order_by("account_id", "created_at")
        .values("account_id", "created_at", "sent_at", "completed_at")
    )

    def median(values) -> float:
        return statistics.median(values) if values else 0.0

    pairs = [(a, b) for a, b in itertools.pairwise(pushes) if a["account_id"] == b["account_id"]]
    return {
        "slot_p50": median(
            [(p["sent_at"] - p["created_at"]).total_seconds() for p in pushes if p["sent_at"]]
        ),
        "outcome_p50": median(
            [
                (p["completed_at"] - p["sent_at"]).total_seconds()
                for p in pushes
                if p["sent_at"] and p["completed_at"]
            ]
        ),
        "gap_p50": median(
            [(b["created_at"] - a["completed_at"]).total_seconds() for a, b in pairs]
        ),
        "turn_p50": median([(b["created_at"] - a["created_at"]).total_seconds() for a, b in pairs]),
    }


if __name__ == "__main__":
    sys.exit(main())
