"""The sandbox suite's fixtures: a contract-checking API client on top of `sandbox`."""

import pytest

from tests.sandbox.contract import check_response


class ContractClient:
    """Calls the sandbox's Codat API; every response is validated against Codat's documents."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def call(self, method: str, path: str, *, contract: bool = True, **kwargs):
        response = self.sandbox.request(method, path, **kwargs)
        if contract:
            check_response(response)
        return response

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.call("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.call("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.call("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)

    # Small builders used across tests.
    def company(self, name="Acme Ltd", **fields) -> dict:
        response = self.post("/companies", json={"name": name, **fields})
        assert response.status_code == 200, response.text
        return response.json()

    def connection(self, company_id: str, platform_key="mqjo") -> dict:
        response = self.post(
            f"/companies/{company_id}/connections", json={"platformKey": platform_key}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def linked_company(self, platform_key="mqjo", **fields) -> tuple[dict, dict]:
        company = self.company(**fields)
        connection = self.connection(company["id"], platform_key)
        self.sandbox.authorize(company["id"], connection["id"])
        return company, connection


@pytest.fixture
def api(sandbox):
    return ContractClient(sandbox)


@pytest.fixture
def receiver():
    from tests.sandbox.receiver import Receiver

    running = Receiver()
    yield running
    running.close()
