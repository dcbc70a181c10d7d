"""How fast the sandbox replays client-level sync schedules for a fleet (loopback only, bounded).

Starts its own sandbox (temporary state, random key, rate limits off), links N companies (one
accounting connection each, the default client-level settings: every fetch-on-first-link type
daily), then advances the sandbox clock by D days in one call and prints the wall time, the reads
and datasets it produced, and datasets per wall second. Usage:
.venv/bin/python bench/sandbox_schedules.py [--companies 500] [--days 2]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.plugins.codat_sandbox import start_sandbox, stop_sandbox

DAY = 86400


def advance(sandbox, seconds: float) -> None:
    # One advance fires every timer due on the way, within the request: it may take minutes.
    response = sandbox.request(
        "POST", "/_sandbox/clock/advance", json={"seconds": seconds}, timeout=3600
    )
    response.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--companies", type=int, default=500)
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    if not 1 <= args.companies <= 5000 or not 1 <= args.days <= 30:
        parser.error("--companies 1..5000, --days 1..30")
    with tempfile.TemporaryDirectory() as state:
        sandbox = start_sandbox(Path(state))
        try:
            sandbox.control(
                "PUT",
                "rate-limits",
                {"dailyQuota": None, "perMinute": None, "concurrentPerCompany": None},
            )
            started = time.monotonic()
            for number in range(args.companies):
                company = sandbox.request("POST", "/companies", json={"name": f"Fleet {number}"})
                company_id = company.json()["id"]
                connection = sandbox.request(
                    "POST", f"/companies/{company_id}/connections", json={"platformKey": "mqjo"}
                ).json()
                sandbox.authorize(company_id, connection["id"])
            linked = time.monotonic() - started
            advance(sandbox, 120)  # the first reads end
            before = len(sandbox.control("GET", "reads").json())
            started = time.monotonic()
            advance(sandbox, args.days * DAY)
            replayed = time.monotonic() - started
            reads = sandbox.control("GET", "reads").json()[before:]
            datasets = sum(len(read["datasets"]) for read in reads)
            print(f"companies linked: {args.companies} in {linked:.1f} s")
            print(f"sandbox days replayed: {args.days} in {replayed:.1f} s wall")
            print(f"scheduled reads: {len(reads)}, datasets: {datasets}")
            print(f"datasets per wall second: {datasets / replayed:.0f}")
        finally:
            stop_sandbox(sandbox)


if __name__ == "__main__":
    main()
