"""Schemathesis, every check, against the running API from its own schema, once per key scope.

The portal runs as pytest-django's live server; the Schemathesis CLI runs in a process of its
own against it over HTTP, with a key of each scope (and one with all of them). Path parameters
are pinned to a real company, product, job, operation, receipt and webhook event, so the runs
reach the handlers' success paths and not only their 404s (which tests/api/test_errors.py
covers). Bounded: a few examples per operation.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.roles import API_SCOPES
from tests.api.conftest import make_key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Examples per operation: more for the key that reaches every handler's success path.
EXAMPLES = {"all": 8}
FEW_EXAMPLES = 3


def _config(tmp_path: Path, world) -> Path:
    pinned = {
        "company_id": str(world.company.codat_id),
        "product": world.product.identifier,
        "job_id": str(world.job.pk),
        "operation_id": str(world.operation.pk),
        "receipt_id": world.receipt_id,
        "event_id": str(world.event.pk),
        "account_id": world.bank_account.account_id,
    }
    lines = [CONFIG.read_text(), "[parameters]"]
    lines += [f"{name} = {json.dumps(value)}" for name, value in pinned.items()]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("principal", [*API_SCOPES, "all"])
def test_schemathesis_finds_no_failures(live_server, world, principal, tmp_path):
    scopes = list(API_SCOPES) if principal == "all" else [principal]
    key = make_key(scopes, name=principal)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(_config(tmp_path, world)),
            "run",
            f"{live_server.url}/api/v1/schema/",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            str(EXAMPLES.get(principal, FEW_EXAMPLES)),
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
            # A key of one scope is refused most operations: its run is about the 401/403
            # answers (ignored_auth, status and content types); the coverage phase's boundary
            # cases run with the key that reaches every handler.
            *([] if principal == "all" else ["--phases", "fuzzing,stateful"]),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert " passed" in summary and "failures" not in summary.split("Test cases:")[-1], summary
