"""The four sync-settings kinds, each through the worker's function and over HTTP to the
sandbox: what Codat holds afterwards, and what the portal recorded of it."""

import pytest

from operations.models import OperationKind, OperationState
from syncsettings.models import ClientSyncSettings, CompanySyncSettings, ScheduledDataType
from syncsettings.selectors import client_scheduled_data_types
from syncsettings.services import (
    client_sync_settings_read_request,
    client_sync_settings_set_request,
    company_sync_settings_read_request,
    company_sync_settings_set_request,
)
from syncsettings.validation import SyncSettingsInvalid
from tests.operations.helpers import make_fleet
from tests.syncsettings.helpers import run, settings_of, with_schedule

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def test_reading_the_client_settings_records_codats_list_and_its_schedules(sandbox, operations_env):
    operation = client_sync_settings_read_request()
    assert client_sync_settings_read_request() == operation  # one live read at a time

    assert run(operation) == "succeeded"

    codat = settings_of(sandbox)
    row = ClientSyncSettings.objects.get()
    assert row.settings == codat["settings"]
    assert row.client_id == codat["clientId"]
    assert row.overrides_defaults == codat["overridesDefaults"]
    # The sandbox's defaults read every data type daily.
    assert client_scheduled_data_types()["invoices"] == 24
    assert ScheduledDataType.objects.filter(company__isnull=True).count() == len(
        [s for s in codat["settings"] if s["syncSchedule"] > 0]
    )


def test_setting_the_client_settings_changes_codat_and_records_what_it_accepted(
    sandbox, operations_env
):
    original = settings_of(sandbox)["settings"]
    wanted = with_schedule(original, {"invoices": 0, "bills": 1, "balanceSheet": 12})

    operation = client_sync_settings_set_request(settings=wanted, overrides_defaults=True)
    assert operation.kind == OperationKind.SET_CLIENT_SYNC_SETTINGS
    assert run(operation) == "succeeded"

    codat = {s["dataType"]: s for s in settings_of(sandbox)["settings"]}
    assert (codat["invoices"]["syncSchedule"], codat["bills"]["syncSchedule"]) == (0, 1)
    scheduled = client_scheduled_data_types()
    assert "invoices" not in scheduled  # 0 is no schedule
    assert (scheduled["bills"], scheduled["balanceSheet"]) == (1, 12)
    assert ClientSyncSettings.objects.get().overrides_defaults is True


def test_a_later_set_replaces_one_not_yet_started(sandbox, operations_env):
    original = settings_of(sandbox)["settings"]
    first = client_sync_settings_set_request(
        settings=with_schedule(original, {"invoices": 0}), overrides_defaults=True
    )
    second = client_sync_settings_set_request(
        settings=with_schedule(original, {"invoices": 6}), overrides_defaults=True
    )
    first.refresh_from_db()
    assert first.state == OperationState.CANCELLED
    assert run(second) == "succeeded"
    assert client_scheduled_data_types()["invoices"] == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"syncSchedule": -1}, "invoices.syncSchedule"),
        (
            {"syncFromUtc": "2024-01-01T00:00:00Z", "syncFromWindow": 3},
            "invoices.syncFromUtc",
        ),
        ({"monthsToSync": 12}, "invoices.monthsToSync"),
        ({"syncFromUtc": "yesterday"}, "invoices.syncFromUtc"),
        ({"dataType": "nonsense"}, "settings[0].dataType"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_nothing_is_written(
    sandbox, operations_env, change, field
):
    setting = {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 24}
    setting["syncOrder"] = 0
    with pytest.raises(SyncSettingsInvalid) as refused:
        client_sync_settings_set_request(settings=[{**setting, **change}], overrides_defaults=True)
    assert refused.value.field == field
    from operations.models import Operation

    assert not Operation.objects.exists()


def test_hourly_and_monthly_statement_settings_are_accepted(sandbox, operations_env):
    settings = [
        {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 1, "syncOrder": 0},
        {
            "dataType": "balanceSheet",
            "fetchOnFirstLink": True,
            "syncSchedule": 24,
            "syncOrder": 1,
            "monthsToSync": 12,
            "syncFromWindow": 6,
        },
    ]
    operation = client_sync_settings_set_request(settings=settings, overrides_defaults=True)
    assert run(operation) == "succeeded", operation.last_error
    assert client_scheduled_data_types() == {"balanceSheet": 24, "invoices": 1}


def test_a_company_without_settings_of_its_own_has_no_override_and_follows_the_client(
    sandbox, operations_env
):
    (company,) = make_fleet(sandbox, 1)
    run(client_sync_settings_read_request())

    operation = company_sync_settings_read_request(company=company)
    assert operation.kind == OperationKind.READ_COMPANY_SYNC_SETTINGS
    assert run(operation) == "succeeded"

    assert not CompanySyncSettings.objects.exists()
    assert client_scheduled_data_types(company=company)["invoices"] == 24


def test_setting_a_companys_settings_overrides_the_clients_for_it_alone(sandbox, operations_env):
    first, second = make_fleet(sandbox, 2)
    run(client_sync_settings_read_request())
    own = with_schedule(settings_of(sandbox)["settings"], {"invoices": 0})

    operation = company_sync_settings_set_request(
        company=first, settings=own, overrides_defaults=True
    )
    assert run(operation) == "succeeded", operation.last_error

    codat = settings_of(sandbox, f"/companies/{first.codat_id}/syncSettings")
    assert {s["dataType"]: s["syncSchedule"] for s in codat["settings"]}["invoices"] == 0
    assert CompanySyncSettings.objects.get().company == first
    assert "invoices" not in client_scheduled_data_types(company=first)
    assert client_scheduled_data_types(company=second)["invoices"] == 24
    # Read back from Codat, the override is still the company's own.
    assert run(company_sync_settings_read_request(company=first)) == "succeeded"
    assert CompanySyncSettings.objects.get(company=first).settings == codat["settings"]
