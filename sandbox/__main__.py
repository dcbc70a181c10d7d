"""python -m sandbox --port 8765 [--host 127.0.0.1] [--state-dir .sandbox] [--demo] ..."""

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

import uvicorn

from sandbox.app import create_app
from sandbox.demo import seed_demo_world
from sandbox.runtime import Sandbox


def loopback_host(value: str) -> str:
    if value == "localhost":
        return value
    try:
        if ipaddress.ip_address(value).is_loopback:
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{value} is not a loopback address; the sandbox is local only"
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="A local Codat sandbox.")
    parser.add_argument("--host", type=loopback_host, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    # Relative to the working directory, so an installed sandbox keeps its state beside its user.
    parser.add_argument("--state-dir", type=Path, default=Path(".sandbox"))
    parser.add_argument("--speed", type=float, default=1.0, help="sandbox seconds per real second")
    parser.add_argument("--daily-quota", type=int, default=None, help="default: Codat's formula")
    parser.add_argument("--per-minute", type=int, default=1000)
    parser.add_argument("--public-url", default=None, help="base URL used in linkUrl")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--demo", action="store_true", help="seed the demo world (POST /_sandbox/demo) at start"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    api_key = os.environ.get("CODAT_API_KEY")
    if not api_key:
        print("CODAT_API_KEY must be set: requests must carry Basic base64(key)", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper())
    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    sandbox = Sandbox(
        args.state_dir,
        api_key=api_key,
        public_url=args.public_url or f"http://{host_in_url}:{args.port}",
        overrides={
            "speed": args.speed,
            "rateLimits": {"dailyQuota": args.daily_quota, "perMinute": args.per_minute},
        },
    )
    if args.demo:
        created = seed_demo_world(sandbox)
        print(f"Demo world: {len(created)} companies created", file=sys.stderr)
    uvicorn.run(
        create_app(sandbox),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
