"""A sync migration run through the real engine: N companies through all five steps.

Starts its own sandbox (temporary state, random key) whose ceiling is L requests a second, gives
it client-level settings (invoices daily, bills weekly) and N companies (K of them with their
own override) and one webhook consumer of read events, mirrors them, lets the portal read the
settings, then plans a migration of every company to a custom product (canary 5 %), starts it,
continues past the canary as soon as it pauses, and waits until it is completed. A worker runs
the operations and the run; a thread plays beat (the sweeper and the run's re-drive).

Step 2's wait is on the sandbox clock: the sandbox runs SPEED times faster than the wall, and the
portal's wait is set to the hour Codat's plan asks for, divided by the same SPEED.

Prints each step's calls and wall time, the run's wall time, the ideal the rate limit allows
(calls / L, plus the wait) and their ratio. The dry run's call counts are checked against the
rows the run wrote.

Usage: .venv/bin/python bench/sync_migration.py [--companies 2000] [--rate 50] [--overrides 20]
       [--concurrency 4] [--speed 360]
Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_migration_bench,
dropped and created afresh), REDIS_URL (default redis://127.0.0.1:6379/10; the bench flushes it).
"""

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_migration_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
os.environ.setdefault("LOG_LEVEL", "WARNING")

RECEIVER = "http://127.0.0.1:9/codat/webhooks"
HOUR = 3600


def setting(data_type: str, hours: int, order: int) -> dict:
    return {
        "dataType": data_type,
        "fetchOnFirstLink": True,
        "syncSchedule": hours,
        "syncOrder": order,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="ceiling L, requests a second")
    parser.add_argument("--overrides", type=int, default=20, help="companies with own settings")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument("--speed", type=float, default=360.0, help="sandbox seconds a second")
    args = parser.parse_args()
    if not 1 <= args.companies <= 20000 or not 0 <= args.overrides <= args.companies:
        parser.error("--companies 1..20000, --overrides 0..companies")

    from fleet_add import ensure_data_type

    recreate_postgres_database(os.environ["DATABASE_URL"])
    wait_seconds = math.ceil(HOUR / args.speed)
    os.environ["SYNC_MIGRATION_WAIT_SECONDS"] = str(wait_seconds)
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from tests.plugins.celery_worker import CeleryWorker, point_celery_at
    from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    settings.SYNC_MIGRATION_WAIT_SECONDS = wait_seconds

    from portal.celery import app

    point_celery_at(app, os.environ["REDIS_URL"])
    per_minute = int(args.rate * 60)
    sandbox = start_sandbox(Path(tempfile.mkdtemp(prefix="bench-sandbox-")))
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    worker = CeleryWorker(
        app=app,
        env={
            **os.environ,
            "CODAT_BASE_URL": sandbox.base_url,
            "CODAT_API_KEY": sandbox.api_key,
            "SYNC_MIGRATION_WAIT_SECONDS": str(wait_seconds),
        },
        concurrency=args.concurrency,
        log_path=REPO / "var" / "bench-migration-worker.log",
        name="bench-migration",
    )
    stop = threading.Event()
    try:
        from companies.codat_import import companies_import_from_codat
        from companies.models import Company
        from core.roles import ADMIN, create_roles
        from operations import limiter
        from operations.models import ACTIVE_STATES, Operation
        from products.services import product_define
        from syncmigration import services
        from syncmigration.models import Direction, RunState
        from syncsettings.services import (
            client_sync_settings_read_request,
            company_sync_settings_read_request,
        )
        from webhooks.consumers import webhook_consumer_register

        print(f"-- {args.companies} companies: setting up (not measured)", flush=True)
        limiter.redis_client().flushdb()
        sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 1_000_000_000})
        client_id = sandbox.request("GET", "/profile/syncSettings").json()["clientId"]
        body = {
            "clientId": client_id,
            "overridesDefaults": True,
            "settings": [setting("invoices", 24, 0), setting("bills", 168, 1)],
        }
        sandbox.request("POST", "/profile/syncSettings", json=body).raise_for_status()
        identifier = "bench-cash-flow"
        sandbox.control(
            "PUT",
            f"products/{identifier}",
            {"name": "Bench cash flow", "dataTypes": ["invoices", "bills"]},
        )
        for data_type in ("invoices", "bills"):
            ensure_data_type(data_type)
        product = product_define(
            identifier=identifier,
            name="Bench cash flow",
            kind="custom",
            data_types=["invoices", "bills"],
        )
        ids = []
        for number in range(args.companies):
            ids.append(sandbox.request("POST", "/companies", json={"name": f"Bench {number}"}))
        codat_ids = [response.json()["id"] for response in ids]
        for codat_id in codat_ids[: args.overrides]:
            body = {
                "companyId": codat_id,
                "overridesDefaults": True,
                "settings": [setting("invoices", 12, 0)],
            }
            sandbox.request("POST", f"/companies/{codat_id}/syncSettings", json=body)
        companies_import_from_codat()
        # Step 5 runs in the worker, where only recorded consent counts: every company has it.
        from tests.factories import ConsentEventFactory

        for company in Company.objects.all():
            ConsentEventFactory(company=company, product=product)
        sandbox.control("PUT", "rate-limits", {"perMinute": per_minute})
        limiter.configure(per_minute=per_minute)
        sandbox.set_speed(args.speed)
        worker.start()
        beat = threading.Thread(target=play_beat, args=(stop,), daemon=True)
        beat.start()

        overridden = Company.objects.filter(codat_id__in=codat_ids[: args.overrides])
        rows = [client_sync_settings_read_request()]
        rows += [company_sync_settings_read_request(company=c) for c in overridden]
        consumer = webhook_consumer_register(
            url=RECEIVER, event_types=["read.completed", "connection.connected"]
        )
        rows += list(Operation.objects.filter(consumer=consumer))
        while Operation.objects.filter(
            pk__in=[r.pk for r in rows], state__in=ACTIVE_STATES
        ).exists():
            time.sleep(0.2)
        create_roles()
        admin, _ = get_user_model().objects.get_or_create(username="bench-admin", is_staff=True)
        admin.groups.add(Group.objects.get(name=ADMIN))
        admin = get_user_model().objects.get(pk=admin.pk)
        from approvals.services import policy

        thresholds = policy()
        thresholds.bulk_action_over = None  # one person runs the bench
        thresholds.save()

        run = services.migration_run_create(
            scope_kind="all",
            products=[product],
            canary_percent=5,
            receiver_url=RECEIVER,
            created_by=admin,
        )
        planned = dict(run.plan["calls"])
        print(f"-- planned: {sum(planned.values())} calls {planned}", flush=True)
        started = time.monotonic()
        services.migration_run_start(run=run, user=admin)
        paused = 0.0
        while True:
            run.refresh_from_db()
            if run.state == RunState.CANARY_REVIEW:
                # The operator's look at the cohort is not the engine's time.
                pause_started = time.monotonic()
                services.migration_run_continue(run=run, user=admin)
                paused += time.monotonic() - pause_started
            elif run.state == RunState.COMPLETED:
                break
            elif run.state not in (RunState.RUNNING, RunState.CANARY_REVIEW):
                raise SystemExit(f"{run} is {run.state}: {run.last_error}")
            time.sleep(0.2)
        wall = time.monotonic() - started - paused
        calls = [
            c
            for c in sandbox.request("GET", "/_sandbox/calls").json()
            if "/products/" in c["path"] and c["method"] == "PUT"
        ]
        times = sorted(c["realTime"] for c in calls)
        add_rate = len(times) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        throttled = sum(1 for c in calls if c["status"] == 429)
    finally:
        stop.set()
        worker.stop()
        stop_sandbox(sandbox)

    steps = run.steps.filter(direction=Direction.FORWARD).order_by("started_at")
    written = {step.stage: len(step.all_operation_ids) for step in steps}
    total_calls = sum(written.values())
    ideal = total_calls / args.rate + wait_seconds
    print()
    print(
        f"sync migration, {args.companies} companies ({args.overrides} with their own settings), "
        f"ceiling L = {args.rate:g} req/s, worker -c {args.concurrency}, sandbox at "
        f"{args.speed:g}x (step 2: {wait_seconds} s of wall = 1 sandbox hour)"
    )
    print(f"{'step':<22} {'planned':>8} {'written':>8} {'wall s':>8}")
    for step in steps:
        seconds = (step.finished_at - step.started_at).total_seconds()
        print(
            f"{step.stage:<22} {planned.get(step.stage, 0):>8} {written[step.stage]:>8} "
            f"{seconds:>8.1f}"
        )
    print(f"dry run equals the run's calls: {written == planned}")
    print(
        f"step 5 (canary and the rest): {add_rate:.1f} add calls/s reached Codat "
        f"({add_rate / args.rate:.2f} of L), {throttled} 429s"
    )
    print(f"run wall time: {wall:.1f} s for {total_calls} calls")
    print(f"ideal at L (calls / L + step 2's wait): {ideal:.1f} s")
    print(f"ratio wall / ideal: {wall / ideal:.2f}")
    load = os.getloadavg()
    print(f"machine load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


def recreate_postgres_database(url: str) -> None:
    """The bench's own database, empty each time (consent evidence cannot be deleted)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def play_beat(stop: threading.Event) -> None:
    """What beat does in production: the sweeper every CODAT_OPERATIONS_SWEEP_SECONDS, and the
    run's re-drive (a run whose advancing task was lost)."""
    from django.conf import settings
    from django.db import close_old_connections

    from operations.sweeper import operations_sweep
    from syncmigration.services import migration_runs_redrive

    last_sweep = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() - last_sweep >= settings.CODAT_OPERATIONS_SWEEP_SECONDS:
                operations_sweep()
                last_sweep = time.monotonic()
            migration_runs_redrive(stale_seconds=10)
        finally:
            close_old_connections()
        stop.wait(2.0)


if __name__ == "__main__":
    sys.exit(main())
