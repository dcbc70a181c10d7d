"""The Codat sandbox's control API (`/_sandbox/...`) over HTTP, for the portal's demo tooling.

`make run` (portal/devstack.py) asks a running sandbox for its demo world, and `manage.py seed_demo`
(portal/demo.py) reads back the custom products that world holds. The sandbox is another program,
reached over HTTP as Codat is and never imported. The real Codat has no such API (it defines custom
products for a client on request and shows webhook secrets in its Portal), so nothing on the
portal's request or worker paths calls this. Framework-free: `make run` uses it before Django runs.
"""

import base64
from typing import Any

import requests

# Seeding the demo world answers once the new companies' first reads have ended (seconds).
DEFAULT_TIMEOUT = (3.05, 90.0)


class SandboxControlError(Exception):
    """The control API did not answer, or answered with an error (a real Codat answers 404)."""


class SandboxControl:
    def __init__(self, base_url: str, api_key: str, *, timeout=DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # The same credentials as Codat's API: the API key itself, base64-encoded.
        self._authorization = "Basic " + base64.b64encode(api_key.encode()).decode("ascii")

    def call(self, method: str, path: str, json: Any = None) -> Any:
        url = f"{self.base_url}/_sandbox/{path.lstrip('/')}"
        try:
            response = requests.request(
                method,
                url,
                json=json,
                headers={"Authorization": self._authorization},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise SandboxControlError(f"{method} {url}: {error}") from error
        if not 200 <= response.status_code < 300:
            raise SandboxControlError(
                f"{method} {url}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else None

    def seed_demo_world(self) -> dict:
        """`{created, companies, customProducts, firstReadsFinished}`; safe to ask again."""
        return self.call("POST", "demo")

    def custom_products(self) -> dict[str, dict]:
        """The custom products defined at the sandbox, by identifier, as the sandbox lists them:
        `{identifier, name, dataTypes, schedule, ...}`."""
        products = self.call("GET", "products")
        return {p["identifier"]: p for p in products if p.get("custom")}

    def webhook_secret(self, consumer_id: str) -> str:
        return self.call("GET", f"webhooks/consumers/{consumer_id}/secret")["secret"]
