"""Each company's mode (client-level, product-level, dual-sync risk, none), per company and
set-based, and the dual-sync guard of adding a custom product (per company, in the summary of
a selection, overridden with a written reason, and passing once client-level schedules are off).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from companies.models import Company
from operations.planning import operations_preview, operations_preview_summary
from operations.services import operations_start
from syncsettings.guard import DUAL_SYNC_OVERRIDE
from syncsettings.models import SyncModeKind
from syncsettings.selectors import company_sync_mode, dual_sync_risks, with_sync_mode
from syncsettings.services import client_sync_settings_record, company_sync_settings_record
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory, StaffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]


def setting(data_type: str, hours: int, order: int = 0) -> dict:
    return {
        "dataType": data_type,
        "fetchOnFirstLink": True,
        "syncSchedule": hours,
        "syncOrder": order,
    }


def client_schedules(**hours: int) -> None:
    client_sync_settings_record(
        client_id="client-1",
        settings=[setting(t, h, i) for i, (t, h) in enumerate(hours.items())],
        overrides_defaults=True,
        observed_at=timezone.now(),
    )


def own_schedules(company, **hours: int) -> None:
    company_sync_settings_record(
        company=company,
        settings=[setting(t, h, i) for i, (t, h) in enumerate(hours.items())],
        overrides_defaults=True,
        observed_at=timezone.now(),
        written=True,
    )


@pytest.fixture
def cash_flow():
    return ProductFactory(
        identifier="cash-flow", name="Cash flow", kind="custom", data_types=["invoices", "bills"]
    )


@pytest.fixture
def books():
    """One company in each mode, and the settings that put them there."""
    client_schedules(invoices=24, customers=12, bankAccounts=0)
    client_level = CompanyFactory(name="Client level")
    dual = CompanyFactory(name="Dual")
    product_level = CompanyFactory(name="Product level")
    nothing = CompanyFactory(name="Nothing")
    reporting = ProductFactory(
        identifier="reporting", name="Reporting", kind="custom", data_types=["invoices"]
    )
    payables = ProductFactory(
        identifier="payables", name="Payables", kind="custom", data_types=["bills"]
    )
    CompanyProductFactory(company=dual, product=reporting)
    CompanyProductFactory(company=product_level, product=reporting)
    own_schedules(product_level, invoices=0, customers=12)
    own_schedules(nothing, invoices=0)
    CompanyProductFactory(company=CompanyFactory(name="Payables only"), product=payables)
    return {
        "client_level": client_level,
        "dual": dual,
        "product_level": product_level,
        "nothing": nothing,
    }


def test_each_company_shows_its_mode_and_the_reason_in_words(books):
    dual = company_sync_mode(company=books["dual"])
    assert dual.mode == SyncModeKind.DUAL_SYNC_RISK
    assert dual.overlapping_data_types == ("invoices",)
    assert "invoices is read twice" in dual.reason and "Reporting" in dual.reason
    assert "daily" in dual.reason

    client_level = company_sync_mode(company=books["client_level"])
    assert client_level.mode == SyncModeKind.CLIENT_LEVEL
    assert "customers, invoices" in client_level.reason

    product_level = company_sync_mode(company=books["product_level"])
    assert product_level.mode == SyncModeKind.PRODUCT_LEVEL
    assert "Reporting" in product_level.reason
    assert product_level.overlapping_data_types == ()

    assert company_sync_mode(company=books["nothing"]).mode == SyncModeKind.NONE


def test_the_set_based_mode_agrees_with_the_per_company_one_in_one_query(books):
    with CaptureQueriesContext(connection) as queries:
        modes = dict(with_sync_mode(Company.objects.all()).values_list("name", "sync_mode"))
    assert len(queries) == 1
    for company in Company.objects.all():
        assert modes[company.name] == company_sync_mode(company=company).mode, company.name
    assert modes["Payables only"] == SyncModeKind.PRODUCT_LEVEL


def test_risks_as_things_stand_and_if_a_product_were_added(books, cash_flow):
    ids = [c.pk for c in Company.objects.all()]
    assert dual_sync_risks(company_ids=ids) == {books["dual"].pk: ("invoices",)}
    if_added = dual_sync_risks(company_ids=ids, product=cash_flow)
    # Everyone on the client's schedule would read invoices twice; not those whose own
    # settings have invoices off.
    assert books["client_level"].pk in if_added
    assert books["product_level"].pk not in if_added
    assert books["nothing"].pk not in if_added


def test_without_recorded_settings_nothing_is_a_risk_and_nothing_is_client_level(cash_flow):
    company = CompanyFactory()
    assert company_sync_mode(company=company).mode == SyncModeKind.NONE
    assert "not been read" in company_sync_mode(company=company).reason
    assert dual_sync_risks(company_ids=[company.pk], product=cash_flow) == {}


def test_adding_a_custom_product_leaves_out_companies_at_risk_with_the_reason(books, cash_flow):
    ids = [books["client_level"].pk, books["product_level"].pk]
    plan = operations_preview(kind="add_product", company_ids=ids, product=cash_flow)
    assert plan.queued == [books["product_level"].pk]
    reason = plan.skipped[books["client_level"].pk]
    assert reason.startswith("dual-sync risk: the client-level schedule still reads invoices")
    assert "Cash flow" in reason

    _, started = operations_start(kind="add_product", company_ids=ids, product=cash_flow)
    assert started.skipped == plan.skipped
    assert [op.company_id for op in started.operations] == [books["product_level"].pk]


def test_the_confirmation_summary_counts_the_same_left_out_companies(books, cash_flow):
    summary = operations_preview_summary(
        kind="add_product", companies=Company.objects.all(), product=cash_flow
    )
    plan = operations_preview(
        kind="add_product",
        company_ids=Company.objects.values_list("pk", flat=True),
        product=cash_flow,
    )
    assert summary.queued == len(plan.queued)
    assert summary.skipped_reasons == plan.skipped_reasons()
    assert {company.pk for company, _ in summary.left_out} == set(plan.skipped)


def test_an_override_with_a_written_reason_adds_and_keeps_the_reason(books, cash_flow):
    admin = StaffFactory(username="ada")
    parameters = {DUAL_SYNC_OVERRIDE: "Invoices schedule is being turned off tonight"}
    _, plan = operations_start(
        kind="add_product",
        company_ids=[books["client_level"].pk],
        product=cash_flow,
        parameters=parameters,
        requested_by=admin,
    )
    assert plan.queued == [books["client_level"].pk]
    assert plan.operations[0].parameters == parameters
    entry = AuditEntry.objects.get(action="operations.start")
    assert entry.changes["parameters"] == parameters


def test_the_guard_passes_by_itself_once_the_client_schedule_is_off(books, cash_flow):
    client_schedules(invoices=0, bills=0, customers=12)
    plan = operations_preview(
        kind="add_product", company_ids=[books["client_level"].pk], product=cash_flow
    )
    assert plan.queued == [books["client_level"].pk]


def test_standard_products_and_other_kinds_are_not_guarded(books):
    lending = ProductFactory(
        identifier="lending", name="Lending", kind="standard", data_types=["invoices"]
    )
    plan = operations_preview(
        kind="add_product", company_ids=[books["client_level"].pk], product=lending
    )
    assert plan.queued == [books["client_level"].pk]
