"""Schemathesis over the implemented operations, with Codat's documents as the schema.

Bounded: a few positive examples per operation and a wall-clock budget for the whole run. Path
parameters are sometimes swapped for a real company and connection so that the run reaches the
handlers' success paths, not only their 404s.
"""

import copy
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as openapi_checks

from sandbox.operations import BANK_FEEDS, PLATFORM, operations_in
from tests.oas import load_document
from tests.sandbox.contract import UNDOCUMENTED_BAD_REQUEST, validate_schema

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 10
BUDGET_SECONDS = 12.0


def _schema(document: str, base_url: str):
    raw = copy.deepcopy(load_document(document))
    raw["servers"] = [{"url": base_url}]
    return schemathesis.openapi.from_dict(raw)


def _real_resources(sandbox) -> dict:
    company = sandbox.request("POST", "/companies", json={"name": "Schemathesis Ltd"}).json()
    connection = sandbox.request(
        "POST", f"/companies/{company['id']}/connections", json={"platformKey": "hcws"}
    ).json()
    return {"companyId": company["id"], "connectionId": connection["id"]}


def _run_operation(operation, operation_id: str, sandbox, real: dict, deadline: float) -> int:
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data):
        nonlocal calls
        case = data.draw(operation.as_strategy())
        if data.draw(st.booleans()):
            for name, value in real.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
        if (
            case.query
            and isinstance(case.query.get("pageSize"), int)
            and case.query["pageSize"] > 2000
        ):
            # tests/sandbox/contract.py KNOWN_DISCREPANCIES["pageSize-over-2000"]: the parameter
            # allows 5000 but PagingInfo.pageSize says 2000; a 2001..5000 echo cannot validate.
            case.query["pageSize"] = 2000
        response = case.call(
            base_url=sandbox.base_url, headers={"Authorization": sandbox.auth_header}
        )
        calls += 1
        excluded = []
        if 400 <= response.status_code < 500:
            # Codat refuses schema-valid requests for reasons of state the schema cannot
            # express (an id that does not exist, a read in progress, a standard product
            # refresh, unlinking a connection that is not Linked, a duplicate source account).
            # Such a refusal is accepted only as an ErrorMessage that says what is wrong.
            body = response.json()
            validate_schema(PLATFORM, "#/components/schemas/ErrorMessage", body)
            assert body["error"], f"{operation_id}: a refusal without a reason"
            excluded.append(openapi_checks.positive_data_acceptance)
        if response.status_code == 400 and operation_id in UNDOCUMENTED_BAD_REQUEST:
            # The operation lists no 400 although Codat answers 400 to bad input
            # (contract.py UNDOCUMENTED_BAD_REQUEST); the body must still be an ErrorMessage.
            validate_schema(PLATFORM, "#/components/schemas/ErrorMessage", response.json())
            excluded.append(openapi_checks.status_code_conformance)
        if (
            operation_id == "list-source-accounts"
            and response.status_code == 200
            and response.json() == []
        ):
            excluded.append(openapi_checks.response_schema_conformance)  # empty-source-account-list
        case.validate_response(response, excluded_checks=excluded)

    if time.monotonic() < deadline:
        run()
    return calls


@pytest.mark.parametrize("document", [PLATFORM, BANK_FEEDS])
def test_schemathesis_finds_no_failures(sandbox, document):
    sandbox.control("PUT", "rate-limits", {"perMinute": None, "dailyQuota": None})
    schema = _schema(document, sandbox.base_url)
    real = _real_resources(sandbox)
    deadline = time.monotonic() + BUDGET_SECONDS
    total = 0
    for operation_id, operation in operations_in(document).items():
        api_operation = schema[operation.path][operation.method]
        total += _run_operation(api_operation, operation_id, sandbox, real, deadline)
    assert total > 0
