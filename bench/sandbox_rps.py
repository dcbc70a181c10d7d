"""Requests per second against a local Codat sandbox (loopback only, bounded).

Starts its own sandbox (temporary state, random key, rate limits off), then runs a fixed number of
simple GETs (get-company) and simple POSTs (create-company) from a few client threads, each phase
stopping at its time limit. Usage: .venv/bin/python bench/sandbox_rps.py [--requests 3000]
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

TIME_LIMIT_SECONDS = 20.0


def run_phase(sandbox, label: str, count: int, threads: int, make_call) -> float:
    remaining = [count]
    lock = threading.Lock()
    errors = []
    deadline = time.monotonic() + TIME_LIMIT_SECONDS

    def worker():
        session = requests.Session()
        session.headers["Authorization"] = sandbox.auth_header
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            response = make_call(session)
            if response.status_code >= 300:
                errors.append(response.status_code)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    done = count - remaining[0]
    rate = done / elapsed
    print(f"{label}: {done} requests in {elapsed:.2f} s = {rate:.0f} req/s ({len(errors)} errors)")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state_dir:
        sandbox = start_sandbox(Path(state_dir))
        try:
            sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": 10**9})
            company = sandbox.request("POST", "/companies", json={"name": "Bench Ltd"}).json()
            get_url = sandbox.url(f"/companies/{company['id']}")
            post_url = sandbox.url("/companies")
            run_phase(
                sandbox,
                "GET  /companies/{id}",
                args.requests,
                args.threads,
                lambda s: s.get(get_url, timeout=10),
            )
            run_phase(
                sandbox,
                "POST /companies     ",
                args.requests,
                args.threads,
                lambda s: s.post(post_url, json={"name": "Bench Ltd"}, timeout=10),
            )
        finally:
            stop_sandbox(sandbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())
