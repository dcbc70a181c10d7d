"""The demo: the catalogue, and the sandbox's demo companies imported as from a real Codat."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from companies.models import Company, Connection, DataTypeStatus, PullOperation
from consent.models import ConsentEvent
from operations.models import Operation, OperationKind, OperationState
from operations.worker import RunOutcome, operation_run
from portal.demo import (
    CONSENTED_BEFORE_ADD,
    STANDARD_PRODUCTS,
    demo_webhook_consumer_wait,
    seed_demo,
)
from products.models import CompanyProduct, Product
from tests.factories import StaffFactory
from tests.ports import free_port
from webhooks.models import ConsumerStatus, WebhookConsumer

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db]

# The sandbox's demo world, asked for over HTTP as `make run` asks for it.
DEMO_COMPANIES = 30


@pytest.fixture
def demo_codat(sandbox, operations_env):
    world = sandbox.control("POST", "demo").json()
    assert world["companies"] == DEMO_COMPANIES
    return sandbox


def test_the_portals_standard_products_are_those_its_codat_defines(sandbox):
    at_codat = {p["identifier"]: p for p in sandbox.control("GET", "products").json()}
    for identifier, product in STANDARD_PRODUCTS.items():
        assert at_codat[identifier]["custom"] is False
        assert at_codat[identifier]["name"] == product["name"]
        assert at_codat[identifier]["dataTypes"] == product["dataTypes"], identifier


def test_seed_demo_without_a_sandbox_defines_the_standard_products_and_says_why(settings):
    settings.CODAT_BASE_URL = f"http://127.0.0.1:{free_port()}"
    settings.CODAT_API_KEY = "no-codat-listens-here"
    out = StringIO()

    call_command("seed_demo", stdout=out)

    assert set(Product.objects.values_list("identifier", flat=True)) == set(STANDARD_PRODUCTS)
    assert "custom products not defined: no sandbox demo world to read" in out.getvalue()
    assert "companies not imported: Codat did not answer" in out.getvalue()


def test_seed_demo_builds_the_catalogue_from_codats_example(demo_codat):
    call_command("seed_demo", operator=StaffFactory(username="admin").username)

    assert set(Product.objects.values_list("identifier", flat=True)) >= {
        "lending",
        "bank-feeds",
        "expenses",
    }
    custom = Product.objects.filter(kind="custom")
    assert sorted(product.schedule_display for product in custom) == [
        "daily at 23:00 UTC",
        "hourly",
    ]
    shared = set.intersection(
        *(set(product.data_types.values_list("identifier", flat=True)) for product in custom)
    )
    assert "payments" in shared


def test_seed_demo_imports_every_company_at_codat_in_every_state(demo_codat):
    operator = StaffFactory(username="admin")
    call_command("seed_demo", operator=operator.username)

    assert Company.objects.count() == DEMO_COMPANIES
    assert set(Connection.objects.values_list("status", flat=True)) == {
        "PendingAuth",
        "Linked",
        "Unlinked",
        "Deauthorized",
    }
    assert Company.objects.filter(connections__isnull=True).exists()
    northgate = Company.objects.get(name="Northgate Joinery")
    assert DataTypeStatus.objects.get(company=northgate, data_type="payments").current_status == (
        "FetchError"
    )
    assert DataTypeStatus.objects.get(company=northgate, data_type="invoices").current_status == (
        "Complete"
    )
    assert PullOperation.objects.filter(company=northgate).exists()
    assert CompanyProduct.objects.filter(company=northgate, product__identifier="invoice-finance")

    # Consent is recorded for the active products, by the named operator, except where the
    # demo leaves it missing on purpose.
    events = ConsentEvent.objects.filter(action="grant")
    assert events.filter(company=northgate, channel="admin", actor=operator).exists()
    assert not events.filter(company__name="Harbour Coffee Roasters").exists()


def test_a_demo_bulk_add_goes_straight_through_for_some_and_needs_consent_for_others(
    demo_codat,
):
    from operations.services import operations_preview

    call_command("seed_demo", operator=StaffFactory(username="admin").username)

    for identifier in CONSENTED_BEFORE_ADD:
        plan = operations_preview(
            kind="add_product",
            company_ids=Company.objects.values_list("pk", flat=True),
            product=Product.objects.get(identifier=identifier),
        )
        straight_through = set(
            Company.objects.filter(pk__in=plan.queued).values_list("name", flat=True)
        )
        assert straight_through == CONSENTED_BEFORE_ADD[identifier]
        assert any("no consent recorded" in reason for reason in plan.skipped.values())


def test_seeding_twice_updates_instead_of_duplicating(demo_codat):
    StaffFactory(username="admin")
    call_command("seed_demo")
    counts = (Company.objects.count(), Connection.objects.count(), ConsentEvent.objects.count())
    pulls = set(PullOperation.objects.values_list("codat_id", flat=True))

    call_command("seed_demo")

    assert (
        Company.objects.count(),
        Connection.objects.count(),
        ConsentEvent.objects.count(),
    ) == counts
    # A read can be new at Codat between the runs: the hourly custom product's, on the hour.
    new_pulls = PullOperation.objects.exclude(codat_id__in=pulls)
    hourly = Product.objects.get(schedule_kind="hourly")
    assert pulls <= set(PullOperation.objects.values_list("codat_id", flat=True))
    assert set(new_pulls.values_list("data_type__identifier", flat=True)) <= set(
        hourly.data_types.values_list("identifier", flat=True)
    )


def test_import_from_codat_mirrors_the_companies_without_writing_a_catalogue(demo_codat):
    call_command("import_from_codat")
    assert Company.objects.count() == DEMO_COMPANIES
    assert DataTypeStatus.objects.filter(current_status="Complete").exists()
    assert not Product.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_seed_demo_registers_the_portals_endpoint_through_an_operation_row_once(demo_codat):
    StaffFactory(username="admin")
    url = "http://127.0.0.1:8000/webhooks/codat/"

    # when
    counts = seed_demo(webhook_url=url)

    # then: the consumer is in the admin at once, waiting for its row, which a worker runs
    consumer = WebhookConsumer.objects.get(pk=counts["webhook_consumer"])
    assert (consumer.url, consumer.status, consumer.codat_id) == (
        url,
        ConsumerStatus.PENDING_CREATE,
        None,
    )
    assert {"invoice-finance.read.completed", "bankTransactions.write.successful"} <= set(
        consumer.event_types
    )
    operation = Operation.objects.get(kind=OperationKind.REGISTER_CONSUMER, consumer=consumer)
    assert operation_run(operation_id=operation.pk) == RunOutcome.SUCCEEDED

    registered = demo_webhook_consumer_wait(consumer, seconds=1)
    assert registered.status == ConsumerStatus.ACTIVE
    # Codat's id is the one the sandbox keeps the signing secret under.
    secret = demo_codat.control("GET", f"webhooks/consumers/{registered.codat_id}/secret")
    assert secret.json()["secret"].startswith("whsec_")

    # Seeding again keeps the registered consumer: no second one at Codat.
    assert seed_demo(webhook_url=url)["webhook_consumer"] == consumer.pk
    assert WebhookConsumer.objects.count() == 1
    assert Operation.objects.filter(kind=OperationKind.REGISTER_CONSUMER).count() == 1


def test_seed_demo_says_so_when_no_worker_registers_the_endpoint(demo_codat):
    StaffFactory(username="admin")

    # No worker runs here (the row is sent to one only on commit).
    with pytest.raises(
        CommandError, match="not registered at Codat within 1 s: is a worker running"
    ):
        call_command(
            "seed_demo", webhook_url="http://127.0.0.1:8000/webhooks/codat/", webhook_wait=1
        )

    operation = Operation.objects.get(kind=OperationKind.REGISTER_CONSUMER)
    assert operation.state == OperationState.PENDING


def test_the_demo_shows_companies_in_each_sync_mode_once_its_sync_settings_are_read(demo_codat):
    from syncsettings.models import SyncModeKind
    from syncsettings.selectors import company_sync_mode

    call_command("seed_demo", operator=StaffFactory(username="admin").username)
    kinds = (
        OperationKind.READ_CLIENT_SYNC_SETTINGS,
        OperationKind.SET_COMPANY_SYNC_SETTINGS,
    )
    rows = Operation.objects.filter(kind__in=kinds, state=OperationState.PENDING)
    assert rows.count() == 3
    for operation in rows.order_by("pk"):
        assert operation_run(operation_id=operation.pk) == RunOutcome.SUCCEEDED

    def mode(name):
        return company_sync_mode(company=Company.objects.get(name=name))

    assert mode("Lantern Books").mode == SyncModeKind.PRODUCT_LEVEL
    assert mode("Copperleaf Bakery").mode == SyncModeKind.CLIENT_LEVEL
    northgate = mode("Northgate Joinery")
    assert northgate.mode == SyncModeKind.DUAL_SYNC_RISK
    assert "Invoice finance" in northgate.reason
