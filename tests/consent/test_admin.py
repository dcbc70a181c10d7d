"""Consent in the admin: the per-company matrix, requests, campaigns and their counts, texts,
and recording consent on a customer's behalf."""

import csv
import io

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from consent import selectors, services
from consent.models import Campaign, ConsentEvent, ConsentRequest, ConsentText
from consent.tasks import consent_reconcile_task
from tests.factories import CompanyFactory, ConsentEventFactory, StaffFactory

pytestmark = pytest.mark.django_db


def login(client, role):
    user = StaffFactory(role=role, first_name="Olive", last_name="Ops")
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_matrix_renders_for_every_role(client, role, company, product, other_product):
    login(client, role)
    ConsentEventFactory(company=company, product=product, data_types=["balanceSheet"])
    response = client.get(reverse("admin:consent_companyconsent_change", args=[company.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "required, missing" in html  # invoices of Lending, bills of Expenses
    assert "required, consented" in html
    assert client.get(reverse("admin:consent_companyconsent_changelist")).status_code == 200
    can_act = role != "viewer"
    assert ("Send a consent request" in html) is can_act


def test_a_viewer_cannot_send_or_record(client, company):
    login(client, "viewer")
    for name in ("admin:consent_companyconsent_request", "admin:consent_companyconsent_record"):
        assert client.get(reverse(name, args=[company.pk])).status_code == 403
    assert client.get(reverse("admin:consent_campaign_add")).status_code == 403


def test_an_operator_sends_a_request_and_sees_the_link_once(client, company, product):
    login(client, "operator")
    response = client.post(
        reverse("admin:consent_companyconsent_request", args=[company.pk]),
        {"products": [product.pk], "email": "owner@acme.example"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    request = ConsentRequest.objects.get()
    link = response.context["issued"].url
    assert "/consent/link/" in link and link.encode() in response.content
    assert request.email == "owner@acme.example"


def test_an_operator_records_consent_for_the_customer_and_is_named(client, company, product):
    operator = login(client, "operator")
    url = reverse("admin:consent_companyconsent_record", args=[company.pk])
    refused = client.post(url, {"product": product.pk, "action": "grant"})
    assert refused.status_code == 200  # the confirmation box is required
    assert not ConsentEvent.objects.exists()
    response = client.post(
        url,
        {
            "product": product.pk,
            "action": "grant",
            "optional_data_types": "bankAccounts",
            "confirm": "on",
        },
    )
    assert response.status_code == 302
    event = ConsentEvent.objects.get()
    assert (event.channel, event.actor, event.actor_name) == ("admin", operator, "Olive Ops")
    assert "bankAccounts" in event.data_types


def test_a_campaign_downloads_links_mails_known_addresses_and_counts(
    client, company, product, django_capture_on_commit_callbacks
):
    login(client, "operator")
    other = CompanyFactory(name="Beta Ltd")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:consent_campaign_add"),
            {
                "name": "Lending spring",
                "products": [product.pk],
                "companies": [company.pk, other.pk],
                "contacts": f"{other.codat_id}, boss@beta.example",
            },
        )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["company"] for row in rows] == ["Acme Bakery Ltd", "Beta Ltd"]
    assert all("/consent/link/" in row["consent_link"] for row in rows)
    assert [message.to for message in mail.outbox] == [["boss@beta.example"]]

    # Beta opens and grants; Acme never answers, and its link expires.
    beta_token = rows[1]["consent_link"].rstrip("/").rsplit("/", 1)[1]
    request = services.consent_link_exchange(token=beta_token)
    services.consent_grant(
        company=other,
        product=product,
        text=selectors.consent_text_current(product=product),
        actor=services.Actor(channel="link"),
        request=request,
    )
    ConsentRequest.objects.filter(company=company).update(
        expires_at=timezone.now() - timezone.timedelta(seconds=1),
        created_at=timezone.now() - timezone.timedelta(days=8),
    )
    page = client.get(reverse("admin:consent_campaign_changelist"))
    campaign = page.context["cl"].result_list[0]
    assert (
        campaign._sent,
        campaign._opened,
        campaign._granted,
        campaign._declined,
        campaign._expired,
    ) == (2, 1, 1, 0, 1)
    detail = client.get(reverse("admin:consent_campaign_change", args=[campaign.pk]))
    assert b"sent 2, opened 1, granted 1, declined 0, expired 1" in detail.content
    assert Campaign.objects.count() == 1


def test_a_campaign_without_companies_asks_those_lacking_consent(client, company, product):
    login(client, "operator")
    consenting = CompanyFactory()
    ConsentEventFactory(company=consenting, product=product)
    response = client.post(
        reverse("admin:consent_campaign_add"), {"name": "Gap", "products": [product.pk]}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["company"] for row in rows] == [company.name]


def test_an_admin_publishes_a_new_text_version_and_nobody_edits_one(client, product):
    admin_user = login(client, "admin")
    first = selectors.consent_text_current(product=product)
    add = reverse("admin:consent_consenttext_add")
    prefilled = client.get(add, {"product": product.pk})
    assert prefilled.context["form"].initial["purpose"] == first.purpose
    response = client.post(
        add, {"product": product.pk, "purpose": "A new purpose.", "retention": first.retention}
    )
    latest = ConsentText.objects.filter(product=product).order_by("-version").first()
    assert (latest.version, latest.purpose, latest.created_by) == (2, "A new purpose.", admin_user)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:consent_consenttext_change", args=[latest.pk])
    change = reverse("admin:consent_consenttext_change", args=[first.pk])
    assert client.post(change, {"purpose": "edited"}).status_code == 403
    first.refresh_from_db()
    assert first.purpose != "edited"


def test_the_history_entry_of_a_published_text_points_at_the_new_version(client, product):
    admin_user = login(client, "admin")
    first = selectors.consent_text_current(product=product)
    add = reverse("admin:consent_consenttext_add")
    client.post(add, {"product": product.pk, "purpose": "Clearer.", "retention": first.retention})
    latest = selectors.consent_text_current(product=product)
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.user, entry.object_id) == (
        ADDITION,
        admin_user,
        str(latest.pk),
    )
    assert entry.get_edited_object() == latest != first
    # Publishing the same text again adds no version and writes no history.
    client.post(add, {"product": product.pk, "purpose": "Clearer.", "retention": first.retention})
    assert ConsentText.objects.count() == 2
    assert LogEntry.objects.count() == 1


def test_the_retention_in_days_is_published_with_the_text_and_bad_days_are_refused(client, product):
    login(client, "admin")
    first = selectors.consent_text_current(product=product)
    add = reverse("admin:consent_consenttext_add")
    assert client.get(add, {"product": product.pk}).context["form"].initial["retention_days"] == (
        first.retention_days
    )
    same = {"product": product.pk, "purpose": first.purpose, "retention": first.retention}

    refused = client.post(add, {**same, "retention_days": "0"})
    assert refused.status_code == 200
    assert "retention_days" in refused.context["form"].errors
    assert ConsentText.objects.filter(product=product).count() == 1

    # Only the number changes: a new version, the words and the hash as they were.
    client.post(add, {**same, "retention_days": "365"})
    latest = selectors.consent_text_current(product=product)
    assert (latest.version, latest.retention_days) == (2, 365)
    assert (latest.content_hash, latest.retention) == (first.content_hash, first.retention)
    # Left empty: the current version's number, so nothing changes.
    client.post(add, same)
    assert selectors.consent_text_current(product=product).version == 2


def test_the_reconcile_task_runs_the_reconciler(company, product):
    assert consent_reconcile_task() == {"expired": 0, "removals": 0}


def test_an_operator_adds_a_product_that_then_awaits_consent(client, company, product):
    from operations.models import Operation

    login(client, "operator")
    url = reverse("admin:consent_companyconsent_add_product", args=[company.pk])
    response = client.post(url, {"product": product.pk})
    assert response.status_code == 200
    assert b"awaits consent" in response.content
    assert ConsentRequest.objects.get().reason == "product_added"
    assert not Operation.objects.exists()
    matrix = client.get(reverse("admin:consent_companyconsent_change", args=[company.pk]))
    assert b"Adds awaiting consent" in matrix.content
