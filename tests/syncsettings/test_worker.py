"""The sync-settings kinds through a real Celery worker (its own processes, Redis, PostgreSQL)
against the sandbox: the rows go to the queue on commit and the worker records Codat's answer."""

import pytest

from operations.models import Operation, OperationState
from syncsettings.models import ClientSyncSettings, CompanySyncSettings
from syncsettings.services import (
    client_sync_settings_read_request,
    company_sync_settings_set_request,
)
from tests.operations.helpers import make_fleet
from tests.syncsettings.helpers import settings_of, with_schedule
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def finished(operation) -> bool:
    operation.refresh_from_db()
    return operation.state not in (OperationState.PENDING, OperationState.RUNNING)


def test_the_worker_reads_the_client_settings_and_sets_a_companys(sandbox, operations_worker):
    (company,) = make_fleet(sandbox, 1)
    read = client_sync_settings_read_request()
    wait_until(lambda: finished(read), timeout=60, message="the read never finished")
    assert read.state == OperationState.SUCCEEDED, read.last_error
    assert ClientSyncSettings.objects.get().settings == settings_of(sandbox)["settings"]

    own = with_schedule(ClientSyncSettings.objects.get().settings, {"invoices": 0})
    written = company_sync_settings_set_request(
        company=company, settings=own, overrides_defaults=True
    )
    wait_until(lambda: finished(written), timeout=60, message="the set never finished")
    assert written.state == OperationState.SUCCEEDED, written.last_error
    at_codat = settings_of(sandbox, f"/companies/{company.codat_id}/syncSettings")["settings"]
    assert at_codat == CompanySyncSettings.objects.get(company=company).settings
    assert Operation.objects.filter(state=OperationState.SUCCEEDED).count() == 2
