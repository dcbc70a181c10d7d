"""Benchmark: signed Codat webhook deliveries against the portal under gunicorn.

    .venv/bin/python bench/webhook_ingest.py [--rounds 3] [--seconds 5] [--concurrency 20]
                                             [--rate 200] [--workers N] [--threads 1]
                                             [--layout dedicated|shared]

One gunicorn (production settings) serves every phase, 20 clients at a time:

- trivial: `GET /` (a redirect to the admin; no database, no Redis) as fast as it answers;
- ingest, flat out: distinct signed deliveries to POST /webhooks/codat/ as fast as accepted;
  trivial and ingest alternate for --rounds rounds, and the ratio is the median of the rounds,
  because the box is shared and its load moves;
- ingest, paced: deliveries scheduled at --rate per second; latency is measured from each
  request's scheduled time, so a stall shows up in p99 instead of slowing the senders.

Printed: accepted per second, p50/p99 latency and the ingest/trivial throughput ratio; the goal
is p99 < 100 ms at 200 deliveries a second and a ratio of at least 0.5. Exit status 1 when a
goal is missed or an accepted delivery was not stored.

Where things run (--layout). `dedicated`, the default on 2 or more CPUs: the gunicorn this bench
starts (its own processes only; other gunicorns on the machine are left alone) gets CPU 0 and
this client runs on the others, with PostgreSQL and Redis left to the scheduler. The ratio then
compares what the web server does per endpoint, as it would with the senders and the database
on other machines; PostgreSQL may still take time on CPU 0, which counts against the ingest.
`shared`: everything shares every core, so on a small box the ratio also charges the ingest for
the client's and PostgreSQL's work (a delivery's commit costs PostgreSQL more than half the CPU
of a whole trivial request) and moves with whatever else runs. The README gives the figures of
both.

Database: DATABASE_URL (PostgreSQL: a scratch database `<name>_bench` is created, migrated and
dropped) or, without it, a temporary SQLite file. Redis: REDIS_URL (default db 15 on the local
Redis), flushed afterwards; no worker runs, so the events stay `received`. Loopback only.
"""

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# --- database and server -----------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database():
    """A freshly migrated database URL, removed afterwards."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        with tempfile.TemporaryDirectory() as folder:
            scratch = f"sqlite:///{folder}/bench.sqlite3"
            migrate(scratch)
            yield scratch
        return
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_bench"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    scratch = urlunsplit(parts._replace(path="/" + name))
    try:
        migrate(scratch)
        yield scratch
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=REPO,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "portal.settings.dev",
        },
        check=True,
    )


@contextlib.contextmanager
def gunicorn(database_url: str, redis_url: str, secret: str, workers: int, threads: int):
    """The tests' production-settings gunicorn, with every worker warmed up; yields its port."""
    from tests.webhooks.servers import gunicorn_portal

    with gunicorn_portal(
        database_url=database_url,
        redis_url=redis_url,
        secrets=[secret],
        workers=workers,
        threads=threads,
    ) as base_url:
        port = urlsplit(base_url).port
        # Every worker imports the project on its first request: warm them all up.
        for _ in range(workers * 10):
            request(port, "GET", "/", None, {})
        yield port


def request(
    port: int, method: str, path: str, body: bytes | None, headers: dict
) -> tuple[int, float]:
    """One request on a new connection (gunicorn's sync workers close after each answer)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


# --- deliveries --------------------------------------------------------------------------------


def signed_delivery(key: bytes) -> tuple[bytes, dict]:
    """A read.completed event as Codat sends it, signed as Svix signs it."""
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "eventType": "read.completed",
            "generatedDate": datetime.now(tz=UTC).isoformat(),
            "payload": {
                "referenceCompany": {"id": str(uuid.uuid4()), "name": "Toft stores"},
                "modifiedFromDate": "2026-01-01T00:00:00Z",
                "dataTypes": [
                    {
                        "connectionId": str(uuid.uuid4()),
                        "dataType": "invoices",
                        "recordsModified": True,
                        "status": "Complete",
                        "issues": [],
                    }
                ],
            },
        }
    ).encode()
    webhook_id = "msg_" + uuid.uuid4().hex
    timestamp = str(int(time.time()))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return body, {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def run_phase(port, concurrency, seconds, make_request, rate=None):
    """Closed loop (rate None) or paced; (count of 2xx/3xx, other statuses, latencies, seconds)."""
    latencies, statuses = [], []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    end = start + seconds
    counter = iter(range(10**9))

    def client():
        mine_latencies, mine_statuses = [], []
        while True:
            with lock:
                number = next(counter)
            if rate is None:
                now = time.perf_counter()
                if now >= end:
                    break
                scheduled = max(now, start)
            else:
                scheduled = start + number / rate
                if scheduled >= end:
                    break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            method, path, body, headers = make_request()
            status, _ = request(port, method, path, body, headers)
            mine_latencies.append(time.perf_counter() - scheduled)
            mine_statuses.append(status)
        with lock:
            latencies.extend(mine_latencies)
            statuses.extend(mine_statuses)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(time.perf_counter(), end) - start
    ok = sum(1 for status in statuses if status < 400)
    bad = sorted({status for status in statuses if status >= 400})
    return ok, bad, latencies, elapsed


def own_gunicorn_processes() -> list:
    """The gunicorn master this bench started and its workers: its own process tree only.

    Other gunicorns on a shared machine (other people's test servers) are left alone: they are
    neither pinned nor counted.
    """
    import psutil

    own = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            if "gunicorn" in " ".join(process.cmdline()):
                own.append(process)
    return own


def keep_client_off_server_core() -> str:
    """Pin this bench's gunicorn (master and workers) to CPU 0 and this process to the others."""
    import psutil

    others = [cpu for cpu in range(os.cpu_count() or 1) if cpu != 0]
    if not others:
        raise SystemExit("--layout dedicated needs at least 2 CPUs")
    servers = own_gunicorn_processes()
    if not servers:
        raise SystemExit("found no gunicorn started by this bench to pin")
    for process in servers:
        process.cpu_affinity([0])
    psutil.Process().cpu_affinity(others)
    return (
        f"its gunicorn ({len(servers)} processes) pinned to CPU 0, "
        f"the client to CPU {','.join(map(str, others))}"
    )


def cpu_seconds() -> dict[str, float]:
    """CPU used so far by the server side (this bench's gunicorn, PostgreSQL, Redis) and by this
    client.

    Throughput on two shared cores is noisy; CPU per request is steadier, and shows where an
    ingest costs more than a trivial request.
    """
    import psutil

    used = {"gunicorn": 0.0, "postgres": 0.0, "redis-server": 0.0}
    for process in own_gunicorn_processes():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            used["gunicorn"] += times.user + times.system
    for process in psutil.process_iter(["name"]):
        side = process.info["name"]
        if side in ("postgres", "redis-server"):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                used[side] += times.user + times.system
    return {**used, "server": sum(used.values()), "client": time.process_time()}


def measured_phase(*args, **kwargs):
    """run_phase, with the CPU each side spent on it."""
    before = cpu_seconds()
    result = run_phase(*args, **kwargs)
    after = cpu_seconds()
    return result, {side: after[side] - before[side] for side in before}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="trivial/ingest pairs")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="paced deliveries per second")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread workers)"
    )
    parser.add_argument(
        "--layout",
        choices=("dedicated", "shared"),
        default="dedicated" if (os.cpu_count() or 1) > 1 else "shared",
        help="dedicated: gunicorn on CPU 0, this client on the others; shared: all on all",
    )
    args = parser.parse_args()

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    key = secrets.token_bytes(32)
    secret = "whsec_" + base64.b64encode(key).decode()

    def trivial():
        return "GET", "/", None, {}

    def deliveries(count: int):
        """A phase's deliveries, signed before it starts: signing is the sender's work (Svix's),
        and here the sender shares the two CPUs with the server it measures. Should a phase
        outrun them, the rest are signed as they go."""
        signed = iter([signed_delivery(key) for _ in range(count)])

        def delivery():
            body, headers = next(signed, None) or signed_delivery(key)
            return "POST", "/webhooks/codat/", body, headers

        return delivery

    with (
        scratch_database() as database_url,
        gunicorn(database_url, redis_url, secret, args.workers, args.threads) as port,
    ):
        backend = database_url.split(":", 1)[0]
        if args.layout == "dedicated":
            placement = keep_client_off_server_core()
        else:
            placement = f"{os.cpu_count()} CPUs shared with the client, PostgreSQL and Redis"
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads, {backend}, "
            f"concurrency {args.concurrency}, {args.rounds} rounds of {args.seconds:.0f} s, "
            f"{placement}"
        )
        # Trivial and ingest phases alternate, so load from elsewhere on the box hits both alike.
        rounds = []
        for _ in range(args.rounds):
            trivial_run = measured_phase(port, args.concurrency, args.seconds, trivial)
            ingest_run = measured_phase(
                port, args.concurrency, args.seconds, deliveries(int(args.seconds * 3000))
            )
            rounds.append((trivial_run, ingest_run))
        paced_deliveries = deliveries(int(args.seconds * 2 * args.rate) + 100)
        paced = run_phase(
            port, args.concurrency, args.seconds * 2, paced_deliveries, rate=args.rate
        )
        stored = count_events(database_url)

    print(
        f"{'phase':<26}{'ok/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/req: server':>20}{'(web':>6}{'PG':>6}{'Redis)':>7}{'client':>8}  errors"
    )
    ratios, accepted = [], paced[0]
    server_cpu = {"trivial": [], "ingest": []}
    for number, ((trivial_run, trivial_cpu), (ingest_run, ingest_cpu)) in enumerate(
        rounds, start=1
    ):
        for kind, name, (ok, bad, lat, elapsed), cpu in (
            ("trivial", f"{number}: trivial GET /", trivial_run, trivial_cpu),
            ("ingest", f"{number}: ingest, flat out", ingest_run, ingest_cpu),
        ):
            per_request = {side: spent * 1000 / max(1, ok) for side, spent in cpu.items()}
            server_cpu[kind].append(per_request["server"])
            print(
                f"{name:<26}{ok / elapsed:>8.0f}{percentile(lat, 0.5) * 1000:>9.1f}"
                f"{percentile(lat, 0.99) * 1000:>9.1f}{per_request['server']:>20.2f}"
                f"{per_request['gunicorn']:>6.2f}{per_request['postgres']:>6.2f}"
                f"{per_request['redis-server']:>7.2f}{per_request['client']:>8.2f}"
                f"  {bad or 'none'}"
            )
        ratios.append((ingest_run[0] / ingest_run[3]) / (trivial_run[0] / trivial_run[3]))
        accepted += ingest_run[0]
    ok, bad, lat, elapsed = paced
    paced_p50, paced_p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
    print(
        f"{f'ingest, paced {args.rate:.0f}/s':<26}{ok / elapsed:>8.0f}{paced_p50:>9.1f}"
        f"{paced_p99:>9.1f}  {bad or 'none'}"
    )
    ratio = statistics.median(ratios)
    print(
        f"ingest/trivial throughput ratio: median {ratio:.2f} of "
        f"{', '.join(f'{r:.2f}' for r in ratios)} (goal >= 0.50)"
    )
    print(
        f"server CPU per request: trivial {statistics.median(server_cpu['trivial']):.2f} ms, "
        f"ingest {statistics.median(server_cpu['ingest']):.2f} ms (medians)"
    )
    print(f"paced: p99 {paced_p99:.1f} ms at {ok / elapsed:.0f}/s (goal < 100 ms at 200/s)")
    print(f"events stored: {stored}, deliveries accepted: {accepted}")
    flush(redis_url)
    return 0 if ratio >= 0.5 and paced_p99 < 100 and stored == accepted else 1


def count_events(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return db.execute("SELECT COUNT(*) FROM webhooks_webhookevent").fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute("SELECT COUNT(*) FROM webhooks_webhookevent").fetchone()[0]


def flush(redis_url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    sys.exit(main())
