"""The run page in real Chromium: it fits a 1440 px screen with long names and addresses, and
shows each step with who started it. Skipped without /usr/bin/chromium outside CI."""

import pytest
from django.urls import reverse
from django.utils import timezone

from syncmigration import services
from syncsettings.services import client_sync_settings_record
from tests.factories import CompanyFactory, ProductFactory, StaffFactory
from tests.operations.helpers import ensure_data_types
from tests.portal.test_admin_layout import LONG_NAME, overflow_at, staff_page  # noqa: F401
from webhooks.models import ConsumerStatus, WebhookConsumer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LONG_URL = (
    "https://integrations.northwind-lending.example/codat/webhooks/production/eu-west-1/"
    "receiver?tenant=northwind-commercial-lending"
)


def test_a_started_run_page_fits_a_1440_pixel_screen(staff_page, live_server, monkeypatch):  # noqa: F811
    # given: a run over long-named companies, started, its first step's reads written
    monkeypatch.setattr("operations.queue.enqueue", lambda ids, countdown=None: None)
    monkeypatch.setattr(services, "_enqueue_advance", lambda run_id, countdown=None: None)
    monkeypatch.setattr("consent.selectors.companies_refused_for_consent", lambda **kwargs: {})
    ensure_data_types(["invoices"])  # an earlier transactional test emptied the catalogue
    product = ProductFactory(name=f"Cash flow for the {LONG_NAME}", data_types=["invoices"])
    for number in range(5):
        CompanyFactory(name=f"{LONG_NAME} {number}")
    client_sync_settings_record(
        client_id="client",
        settings=[
            {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0}
        ],
        overrides_defaults=True,
        observed_at=timezone.now(),
    )
    WebhookConsumer.objects.create(
        url=LONG_URL,
        event_types=["read.completed", "connection.connected", "bankFeeds.sourceAccount.connected"],
        status=ConsumerStatus.ACTIVE,
    )
    admin = StaffFactory(role="admin")
    run = services.migration_run_create(
        scope_kind="all",
        products=[product],
        canary_percent=20,
        receiver_url=LONG_URL,
        created_by=admin,
    )
    services.migration_run_start(run=run, user=admin)
    services.migration_run_advance(run_id=run.pk)

    # when
    url = live_server.url + reverse("admin:syncmigration_migrationrun_change", args=[run.pk])
    too_wide = overflow_at(staff_page, url, "migration-run")

    # then
    assert too_wide is None, too_wide
    steps = staff_page.inner_text("#run-steps")
    assert "1. Disable client-level sync settings" in steps
    assert admin.username in steps
    assert "The plan (dry run)" in staff_page.content()
