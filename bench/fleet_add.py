"""Fleet add-product through the real engine: services -> Redis -> a Celery worker -> the sandbox.

Starts its own sandbox (temporary state, random key) whose ceiling is L requests a second
(perMinute = 60 x L), creates N companies there and mirrors them, sets the fleet limiter to the
same ceiling, starts a worker, adds a custom product to every company with one bulk request, and
waits until every row is finished. Then it runs a plain sequential loop over the client doing the
same work (a PUT per company, waiting out any 429) for comparison. With --scale 4 (the default)
it repeats the fleet run with 4 x N companies on a fresh worker, to show the worker's memory does
not grow with the fleet.

Prints: wall time, achieved requests a second, utilisation (achieved / L), 429s, the worker's peak
memory (main process + pool children), and the sequential loop's time.

Usage: .venv/bin/python bench/fleet_add.py [--companies 2000] [--rate 50] [--concurrency 4]
       [--scale 4 | --scale 1]
Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_fleet_bench, created if
missing), REDIS_URL (default redis://127.0.0.1:6379/9; the bench flushes that database). Beat is
played by a thread that runs the sweeper every CODAT_OPERATIONS_SWEEP_SECONDS, as in production.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_fleet_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
os.environ.setdefault("LOG_LEVEL", "WARNING")


def ensure_postgres_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="ceiling L, requests a second")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument("--scale", type=int, default=4, help="also run N x scale (1: skip)")
    args = parser.parse_args()

    ensure_postgres_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from tests.plugins.celery_worker import point_celery_at
    from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

    call_command("migrate", verbosity=0)
    # The bench measures the engine. Consent is checked once, when the rows are planned (not per
    # call), so letting every company through here changes nothing that is measured.
    import consent.selectors

    consent.selectors.companies_refused_for_consent = lambda **kwargs: {}
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    from portal.celery import app

    point_celery_at(app, os.environ["REDIS_URL"])
    per_minute = int(args.rate * 60)
    state_dir = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    sandbox = start_sandbox(state_dir, "--per-minute", str(per_minute))
    settings.CODAT_BASE_URL = sandbox.base_url
    settings.CODAT_API_KEY = sandbox.api_key
    worker_env = {
        **os.environ,
        "CODAT_BASE_URL": sandbox.base_url,
        "CODAT_API_KEY": sandbox.api_key,
    }
    results = []
    try:
        sizes = [args.companies] + ([args.companies * args.scale] if args.scale > 1 else [])
        for size in sizes:
            results.append(
                fleet_run(sandbox, app, worker_env, size, args.rate, per_minute, args.concurrency)
            )
        sequential = sequential_run(sandbox, args.companies, per_minute)
    finally:
        stop_sandbox(sandbox)

    print()
    print(f"fleet add-product, ceiling L = {args.rate:g} req/s, worker -c {args.concurrency}")
    header = (
        f"{'companies':>9} {'wall s':>8} {'calls':>6} {'req/s':>7} {'util':>6} "
        f"{'429s':>5} {'peak worker RSS':>16} {'max in 1 s':>10} {'req/s first-last':>16}"
    )
    print(header)
    for r in results:
        print(
            f"{r['companies']:>9} {r['wall']:>8.1f} {r['calls']:>6} {r['rate']:>7.2f} "
            f"{r['rate'] / args.rate:>6.3f} {r['throttled']:>5} {r['peak_rss'] / 2**20:>12.1f} MiB"
            f" {r['peak_second']:>10} {r['span_rate']:>16.2f}"
        )
    for r in results:
        print(
            f"worker CPU per call ({r['companies']} companies): {r['cpu_ms_per_call']:.1f} ms"
            " (main process + pool children)"
        )
    load = os.getloadavg()
    print(
        f"machine load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if len(results) == 2:
        growth = results[1]["peak_rss"] / results[0]["peak_rss"]
        print(
            f"worker memory {results[1]['companies']} vs {results[0]['companies']}: x{growth:.2f}"
        )
    print(
        f"sequential loop over the client, {sequential['companies']} companies: "
        f"{sequential['wall']:.1f} s ({sequential['calls']} calls, {sequential['throttled']} 429s)"
    )
    return 0


def reset_portal_data() -> None:
    from companies.models import Company
    from operations.models import Job, Operation
    from products.models import CompanyProduct

    Operation.objects.all().delete()
    Job.objects.all().delete()
    CompanyProduct.objects.all().delete()
    Company.objects.all().delete()


def fleet_run(sandbox, app, worker_env, size, rate, per_minute, concurrency) -> dict:
    from codat.client import CodatClient
    from companies.codat_import import companies_import_from_codat
    from operations import limiter
    from operations.models import ACTIVE_STATES, Operation, OperationState
    from operations.services import operations_start
    from products.services import product_define
    from tests.plugins.celery_worker import CeleryWorker

    print(f"-- fleet of {size}: setting up", flush=True)
    sandbox.reset()
    reset_portal_data()
    redis_client = limiter.redis_client()
    redis_client.flushdb()
    # Setting up is not measured: no ceiling while the companies are created.
    # Codat's formula gives a client without linked companies 1,000 calls a day: lift it.
    sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 1_000_000_000})
    identifier = "bench-cash-flow"
    sandbox.control(
        "PUT", f"products/{identifier}", {"name": "Bench cash flow", "dataTypes": ["invoices"]}
    )
    ensure_data_type("invoices")
    product = product_define(
        identifier=identifier, name="Bench cash flow", kind="custom", data_types=["invoices"]
    )
    client = CodatClient(sandbox.base_url, sandbox.api_key)
    for number in range(size):
        client.create_company(f"Bench {number}")
    client.close()
    companies_import_from_codat()
    from companies.models import Company

    company_ids = list(Company.objects.values_list("pk", flat=True))
    assert len(company_ids) == size
    sandbox.control("PUT", "rate-limits", {"perMinute": per_minute})
    limiter.configure(per_minute=per_minute)

    worker = CeleryWorker(
        app=app,
        env=worker_env,
        concurrency=concurrency,
        log_path=REPO / "var" / "bench-worker.log",
        name="bench",
    )
    worker.start()
    stop = threading.Event()
    cpu_seconds = [0.0]

    def sample():
        from django.conf import settings

        from operations.sweeper import operations_sweep

        last_sweep = time.monotonic()
        while not stop.is_set():
            worker.sample_memory()
            cpu_seconds[0] = max(cpu_seconds[0], worker_cpu_seconds(worker))
            # What beat does in production: re-send rows Redis lost, free rows of dead workers.
            if time.monotonic() - last_sweep >= settings.CODAT_OPERATIONS_SWEEP_SECONDS:
                operations_sweep()
                last_sweep = time.monotonic()
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        print(f"-- fleet of {size}: adding the product", flush=True)
        started_wall = time.time()
        started = time.monotonic()
        job, plan = operations_start(kind="add_product", company_ids=company_ids, product=product)
        assert plan.counts["queued"] == size, plan.counts
        while Operation.objects.filter(job=job, state__in=ACTIVE_STATES).exists():
            time.sleep(0.1)
        wall = time.monotonic() - started
        finished_wall = time.time()
    finally:
        stop.set()
        sampler.join()
        worker.stop()
    done = Operation.objects.filter(job=job, state=OperationState.SUCCEEDED).count()
    assert done == size, f"only {done} of {size} succeeded"
    calls = [
        c
        for c in sandbox.request("GET", "/_sandbox/calls").json()
        if started_wall <= c["realTime"] <= finished_wall + 1 and "/products/" in c["path"]
    ]
    throttled = sum(1 for c in calls if c["status"] == 429)
    times = sorted(c["realTime"] for c in calls)
    # The most calls that reached Codat in any one second: the limiter's pacing, seen by Codat.
    peak, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    span = times[-1] - times[0] if len(times) > 1 else wall
    return {
        "cpu_ms_per_call": 1000 * cpu_seconds[0] / max(1, len(calls)),
        "peak_second": peak,
        "span_rate": len(calls) / span if span else 0.0,
        "companies": size,
        "wall": wall,
        "calls": len(calls),
        "rate": len(calls) / wall,
        "throttled": throttled,
        "peak_rss": worker.peak_rss,
    }


def worker_cpu_seconds(worker) -> float:
    import psutil

    if worker.process is None or worker.process.poll() is not None:
        return 0.0
    try:
        main = psutil.Process(worker.process.pid)
        processes = [main, *main.children(recursive=True)]
        return sum(p.cpu_times().user + p.cpu_times().system for p in processes)
    except psutil.Error:
        return 0.0


def sequential_run(sandbox, size, per_minute) -> dict:
    """The same work as a plain loop over the client: one PUT per company, 429s waited out."""
    from codat.client import CodatClient
    from codat.errors import CodatRateLimited

    print(f"-- sequential loop over {size} companies", flush=True)
    sandbox.reset()
    sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 1_000_000_000})
    sandbox.control("PUT", "products/bench-loop", {"name": "Loop", "dataTypes": ["invoices"]})
    client = CodatClient(sandbox.base_url, sandbox.api_key)
    ids = [client.create_company(f"Loop {n}")["id"] for n in range(size)]
    sandbox.control("PUT", "rate-limits", {"perMinute": per_minute})
    calls = throttled = 0
    started = time.monotonic()
    for company_id in ids:
        while True:
            calls += 1
            try:
                client.add_product(company_id, "bench-loop")
                break
            except CodatRateLimited as error:
                throttled += 1
                time.sleep(error.retry_after or 1)
    wall = time.monotonic() - started
    client.close()
    return {"companies": size, "wall": wall, "calls": calls, "throttled": throttled}


def ensure_data_type(identifier: str) -> None:
    from products.data_type_texts import DATA_TYPE_TEXTS
    from products.models import DataType

    name, description = DATA_TYPE_TEXTS[identifier]
    DataType.objects.get_or_create(
        identifier=identifier,
        defaults={"name": name, "category": "accounting", "description": description},
    )


if __name__ == "__main__":
    sys.exit(main())
