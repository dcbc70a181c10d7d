"""The sync settings page, the company list's mode column and filter, the company page's mode
and its refreshes by mode, and the admin-only override of the dual-sync guard, through the
admin with Django's test client."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from operations.models import Operation, OperationKind
from operations.planning import operations_preview
from syncsettings.guard import DUAL_SYNC_OVERRIDE, PRODUCT_LEVEL_REFRESH_REASON
from syncsettings.services import client_sync_settings_record, company_sync_settings_record
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConsentEventFactory,
    ProductFactory,
    StaffFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

PAGE = "admin:syncsettings_clientsyncsettings_changelist"
EDIT = "admin:syncsettings_clientsyncsettings_edit"
READ = "admin:syncsettings_clientsyncsettings_read"
CONFIRM = "admin:companies_company_confirm_operation"
COMPANIES = "admin:companies_company_changelist"

CODAT_SETTINGS = [
    {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0},
    {"dataType": "bills", "fetchOnFirstLink": True, "syncSchedule": 12, "syncOrder": 1},
    {
        "dataType": "balanceSheet",
        "fetchOnFirstLink": False,
        "syncSchedule": 0,
        "syncOrder": 2,
        "monthsToSync": 24,
        "syncFromWindow": 6,
        "isLocked": True,
    },
]


def signed_in(client, role):
    client.force_login(StaffFactory(role=role))
    return client


@pytest.fixture
def recorded():
    return client_sync_settings_record(
        client_id="client-1",
        settings=CODAT_SETTINGS,
        overrides_defaults=False,
        observed_at=timezone.now(),
    )


@pytest.fixture
def books(recorded):
    reporting = ProductFactory(
        identifier="reporting", name="Reporting", kind="custom", data_types=["invoices"]
    )
    client_level = CompanyFactory(name="Client level Ltd")
    dual = CompanyFactory(name="Dual Ltd")
    CompanyProductFactory(company=dual, product=reporting)
    product_level = CompanyFactory(name="Product level Ltd")
    CompanyProductFactory(company=product_level, product=reporting)
    company_sync_settings_record(
        company=product_level,
        settings=[{**CODAT_SETTINGS[0], "syncSchedule": 0}],
        overrides_defaults=True,
        observed_at=timezone.now(),
        written=True,
    )
    return {
        "reporting": reporting,
        "client_level": client_level,
        "dual": dual,
        "product_level": product_level,
    }


# -- the sync settings page -----------------------------------------------------------------------


def test_a_viewer_reads_the_settings_in_words_without_read_or_edit(client, books):
    response = signed_in(client, "viewer").get(reverse(PAGE))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="setting-invoices"' in page and ">daily<" in page
    assert "every 12 hours" in page
    assert "the last 6 months" in page  # the sync-from window
    assert 'id="sync-read"' not in page and 'id="sync-edit"' not in page
    # Companies by mode, each linked to the filtered company list.
    assert "?sync_mode=dual_sync_risk" in page
    # The company's own settings and each custom product's schedule, with its overlap.
    assert "Product level Ltd" in page
    assert 'id="product-schedule-reporting"' in page and "dual-sync risk" in page


def test_the_page_is_in_the_sidebars_pages_module(client, books):
    response = signed_in(client, "viewer").get(reverse("admin:index"))
    assert reverse(PAGE) in response.content.decode()


def test_before_the_first_read_the_page_says_so(client):
    page = signed_in(client, "operator").get(reverse(PAGE)).content.decode()
    assert 'id="sync-not-read"' in page
    assert 'id="sync-read"' in page  # an operator may read


def test_read_from_codat_now_writes_one_read_operation(client, books):
    signed_in(client, "operator")
    response = client.post(reverse(READ))
    assert response.status_code == 302
    client.post(reverse(READ))
    assert Operation.objects.filter(kind=OperationKind.READ_CLIENT_SYNC_SETTINGS).count() == 1


def test_a_viewer_cannot_read_or_edit(client, books):
    signed_in(client, "viewer")
    assert client.post(reverse(READ)).status_code == 403
    assert client.get(reverse(EDIT)).status_code == 403
    assert not Operation.objects.exists()


def test_an_operator_cannot_edit(client, books):
    signed_in(client, "operator")
    assert client.get(reverse(EDIT)).status_code == 403
    assert 'id="sync-edit"' not in client.get(reverse(PAGE)).content.decode()


def edit_data(**changes) -> dict:
    """The edit form as the page fills it, with `changes` per data type (form field names)."""
    rows = [
        ("invoices", True, 24, 0, "", "", ""),
        ("bills", True, 12, 1, "", "", ""),
        ("balanceSheet", False, 0, 2, "", 6, 24),
    ]
    data = {"form-TOTAL_FORMS": "3", "form-INITIAL_FORMS": "3"}
    for index, (data_type, fetch, hours, order, since, window, months) in enumerate(rows):
        row = {
            "data_type": data_type,
            "sync_schedule": hours,
            "sync_order": order,
            "sync_from_utc": since,
            "sync_from_window": window,
            "months_to_sync": months,
        }
        if fetch:
            row["fetch_on_first_link"] = "on"
        row.update(changes.get(data_type, {}))
        data.update({f"form-{index}-{key}": value for key, value in row.items()})
    return data


def test_an_admin_edits_and_a_set_operation_carries_the_settings(client, books):
    signed_in(client, "admin")
    assert 'id="sync-edit"' in client.get(reverse(PAGE)).content.decode()
    assert client.get(reverse(EDIT)).status_code == 200

    response = client.post(
        reverse(EDIT),
        edit_data(invoices={"sync_schedule": 1, "sync_from_utc": "2024-01-01 00:00"}),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    operation = Operation.objects.get(kind=OperationKind.SET_CLIENT_SYNC_SETTINGS)
    sent = {s["dataType"]: s for s in operation.parameters["settings"]}
    assert sent["invoices"]["syncSchedule"] == 1  # hourly is allowed
    assert sent["invoices"]["syncFromUtc"] == "2024-01-01T00:00:00Z"
    assert sent["balanceSheet"]["isLocked"] is True  # kept as Codat had it
    assert sent["balanceSheet"]["monthsToSync"] == 24
    assert operation.parameters["overridesDefaults"] is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"invoices": {"sync_schedule": -1}}, "greater than or equal to 0"),
        (
            {"invoices": {"sync_from_utc": "2024-01-01 00:00", "sync_from_window": 3}},
            "Give a sync-from date or a window, not both.",
        ),
        ({"bills": {"months_to_sync": 12}}, "Only the balance sheet, profit and loss"),
        ({"invoices": {"sync_from_utc": "soon"}}, "Enter a valid date/time."),
    ],
)
def test_bad_input_is_refused_by_field_and_nothing_is_sent(client, books, changes, message):
    signed_in(client, "admin")
    response = client.post(reverse(EDIT), edit_data(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Operation.objects.exists()


# -- the company list and page -----------------------------------------------------------------


def test_the_company_list_shows_each_mode_and_filters_on_it(client, books):
    signed_in(client, "viewer")
    page = client.get(reverse(COMPANIES)).content.decode()
    assert "Dual-sync risk" in page and "Client-level" in page and "Product-level" in page

    filtered = client.get(reverse(COMPANIES), {"sync_mode": "dual_sync_risk"})
    names = [company.name for company in filtered.context["cl"].result_list]
    assert names == ["Dual Ltd"]
    assert client.get(reverse(COMPANIES), {"sync_mode": "junk"}).status_code == 200


def test_the_company_list_with_the_mode_column_costs_the_same_queries_at_any_size(client, books):
    signed_in(client, "viewer")
    client.get(reverse(COMPANIES))  # the process-wide caches, warmed

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(COMPANIES), {"sync_mode": "client_level"}).status_code == 200
        return len(captured)

    few = queries()
    for number in range(30):
        company = CompanyFactory()
        if number % 3 == 0:
            CompanyProductFactory(company=company, product=books["reporting"])
    assert queries() == few


def test_the_company_page_says_the_mode_and_offers_only_the_refreshes_that_fit(client, books):
    ConsentEventFactory(
        company=books["product_level"],
        product=books["reporting"],
        action="grant",
        data_types=["invoices"],
    )
    signed_in(client, "operator")

    def page(company):
        return client.get(
            reverse("admin:companies_company_change", args=[company.pk])
        ).content.decode()

    client_level = page(books["client_level"])
    assert 'id="company-sync-mode"' in client_level
    assert "Refresh all data…" in client_level and "Refresh one data type…" in client_level

    dual = page(books["dual"])
    assert "Dual-sync risk" in dual and "invoices is read twice" in dual
    assert "Refresh all data…" not in dual

    product_level = page(books["product_level"])
    assert "Product-level" in product_level
    assert "Refresh all data…" not in product_level
    assert "Refresh…" in product_level  # the custom product's own refresh


def test_a_standard_product_points_to_its_own_docs_instead_of_a_refresh(client, books):
    lending = ProductFactory(identifier="lending", name="Lending", kind="standard")
    CompanyProductFactory(company=books["client_level"], product=lending)
    signed_in(client, "operator")
    page = client.get(
        reverse("admin:companies_company_change", args=[books["client_level"].pk])
    ).content.decode()
    assert "Standard product: Codat reads it on its own schedule" in page


def test_client_level_refreshes_leave_out_product_level_companies_with_the_reason(books):
    ids = [books[name].pk for name in ("client_level", "dual", "product_level")]
    for kind, data_types in (("refresh_all_data", ()), ("refresh_data_type", ("invoices",))):
        plan = operations_preview(kind=kind, company_ids=ids, data_types=data_types)
        assert plan.queued == [books["client_level"].pk]
        assert plan.skipped == {
            books["dual"].pk: PRODUCT_LEVEL_REFRESH_REASON,
            books["product_level"].pk: PRODUCT_LEVEL_REFRESH_REASON,
        }


# -- the dual-sync guard on the bulk add -----------------------------------------------------------


@pytest.fixture
def cash_flow(books):
    return ProductFactory(
        identifier="cash-flow", name="Cash flow", kind="custom", data_types=["invoices", "bills"]
    )


def confirm(client, product, companies, **extra):
    return client.post(
        reverse(CONFIRM),
        {
            "kind": "add_product",
            "company_ids": ",".join(str(c.pk) for c in companies),
            "product": product.pk,
            **extra,
        },
    )


def test_the_left_out_list_says_dual_sync_risk_and_offers_admins_the_override(
    client, books, cash_flow
):
    signed_in(client, "admin")
    page = confirm(client, cash_flow, [books["client_level"]]).content.decode()
    assert "Dual-sync risk: the client-level schedule still reads bills, invoices" in page
    assert 'id="dual-sync-override"' in page


def test_an_operator_is_not_offered_the_override_and_cannot_post_it(client, books, cash_flow):
    signed_in(client, "operator")
    page = confirm(client, cash_flow, [books["client_level"]]).content.decode()
    assert 'id="dual-sync-override"' not in page
    response = confirm(
        client,
        cash_flow,
        [books["client_level"]],
        override_dual_sync="on",
        dual_sync_override_reason="because",
        confirm="1",
    )
    assert "Only an admin may add a product despite a dual-sync risk." in response.content.decode()
    assert not Operation.objects.exists()


def test_the_override_needs_a_written_reason(client, books, cash_flow):
    signed_in(client, "admin")
    response = confirm(
        client, cash_flow, [books["client_level"]], override_dual_sync="on", confirm="1"
    )
    assert "Write why the companies at dual-sync risk get the product anyway." in (
        response.content.decode()
    )
    assert not Operation.objects.exists()


def test_an_admins_override_adds_and_keeps_the_reason_on_the_rows_and_in_the_trail(
    client, books, cash_flow
):
    signed_in(client, "admin")
    reason = "Client-level invoices are switched off tonight; the customer waits for this"
    review = confirm(
        client,
        cash_flow,
        [books["client_level"]],
        override_dual_sync="on",
        dual_sync_override_reason=reason,
    ).content.decode()
    assert "Yes, add product for 1 company" in review

    response = confirm(
        client,
        cash_flow,
        [books["client_level"]],
        override_dual_sync="on",
        dual_sync_override_reason=reason,
        confirm="1",
    )

    assert response.status_code == 302
    operation = Operation.objects.get(kind=OperationKind.ADD_PRODUCT)
    assert operation.company == books["client_level"]
    assert operation.parameters == {DUAL_SYNC_OVERRIDE: reason}
    entry = AuditEntry.objects.get(action="operations.start")
    assert entry.changes["parameters"] == {DUAL_SYNC_OVERRIDE: reason}
