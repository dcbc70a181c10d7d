"""The public consent pages: the link's "Continue" page and its token exchange, one answer for
every bad link, rate limit, CSRF, headers, the decision form, receipts (HTML and Kantara JSON)
and the manage page."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent import selectors, services
from consent.models import ConsentEvent, ConsentRequest, ConsentText
from products.services import product_define
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def issue(company, products):
    return services.consent_request_create(company=company, products=products)


def link_path(token):
    return reverse("consent:link", kwargs={"token": token})


def continue_page(client, token):
    """The GET of a link: the page with the "Continue" button, which spends nothing."""
    page = client.get(link_path(token))
    assert page.status_code == 200, page.content
    return page


def press_continue(client, token, page, **extra):
    """The POST that the page's one button sends, with the CSRF token the page carries."""
    return client.post(
        link_path(token), {"csrfmiddlewaretoken": str(page.context["csrf_token"])}, **extra
    )


def open_link(client, token):
    """What the owner does: open the link, press Continue, and land on the request."""
    response = press_continue(client, token, continue_page(client, token))
    assert response.status_code == 302, response.content
    return response


def spend(token):
    open_link(Client(), token)


def grant_through_page(client, product, optional=()):
    page = client.get(reverse("consent:request"))
    (text_id,) = [o["text"].pk for o in page.context["offers"] if o["product"] == product]
    return client.post(
        reverse("consent:request"),
        {
            "product": product.pk,
            "text": text_id,
            "decision": "grant",
            "optional_data_types": list(optional),
        },
    )


class TestTokenExchange:
    def test_the_token_is_exchanged_for_a_session_and_leaves_the_url(
        self, client, company, product
    ):
        issued = issue(company, [product])
        response = open_link(client, issued.token)
        assert response["Location"] == reverse("consent:request")
        assert issued.token not in response["Location"]
        assert client.session["consent.company"] == company.pk
        issued.request.refresh_from_db()
        assert issued.request.opened_at is not None

    def test_the_session_id_changes_on_exchange(self, client, company, product):
        client.get(reverse("consent:manage"))  # no session yet: not valid
        client.session.save()
        before = client.session.session_key
        open_link(client, issue(company, [product]).token)
        assert client.session.session_key != before

    def test_every_consent_response_forbids_caching_and_referrers(self, client, company, product):
        issued = issue(company, [product])
        responses = [
            client.get(link_path(issued.token)),
            client.get(reverse("consent:request")),
            client.get(link_path("not-a-token")),
        ]
        for response in responses:
            assert "no-store" in response["Cache-Control"]
            assert response["Referrer-Policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
            assert "default-src 'none'" in response["Content-Security-Policy"]

    def test_a_head_request_does_not_spend_the_link(self, client, company, product):
        issued = issue(company, [product])
        assert client.head(link_path(issued.token)).status_code == 405
        open_link(client, issued.token)

    def test_opening_the_link_shows_one_continue_button_and_changes_nothing(
        self, client, company, product
    ):
        issued = issue(company, [product])
        with CaptureQueriesContext(connection) as queries:
            page = client.get(link_path(issued.token))
        assert page.status_code == 200
        assert writes_and_locks(queries.captured_queries) == []
        html = page.content.decode()
        # One form that posts back to the link with the CSRF token, one button, no script.
        assert html.count("<form") == 1
        assert f'<form method="post" action="{link_path(issued.token)}">' in html
        assert 'name="csrfmiddlewaretoken"' in html
        assert html.count("<button") == 1
        assert '<button type="submit" class="primary">Continue</button>' in html
        assert "<script" not in html
        assert "Northwind Lending plc" in html
        # Nothing about the business is shown before the owner continues.
        assert company.name not in html
        assert "consent.company" not in client.session
        issued.request.refresh_from_db()
        assert issued.request.opened_at is None

    def test_two_gets_then_a_post_still_exchange_the_link(self, client, company, product):
        # A mail scanner and a link preview fetch the link before the owner does.
        issued = issue(company, [product])
        continue_page(Client(), issued.token)
        continue_page(Client(), issued.token)
        response = open_link(client, issued.token)
        assert response["Location"] == reverse("consent:request")
        assert client.get(reverse("consent:request")).status_code == 200

    def test_a_post_exchanges_once_and_a_second_post_is_not_valid(self, client, company, product):
        issued = issue(company, [product])
        page = continue_page(client, issued.token)
        assert press_continue(client, issued.token, page).status_code == 302
        again = press_continue(client, issued.token, page)
        assert again.status_code == 404
        assert b"This link is not valid" in again.content
        other = Client()
        assert other.post(link_path(issued.token)).status_code == 404
        assert other.get(link_path(issued.token)).status_code == 404
        # The session from the first press still holds.
        assert client.get(reverse("consent:request")).status_code == 200


class TestBadLinks:
    """Invalid, expired, used and foreign links are indistinguishable."""

    def bad_tokens(self, company, product):
        used = issue(company, [product])
        spend(used.token)
        with mock.patch(
            "django.utils.timezone.now", return_value=timezone.now() - timedelta(days=8)
        ):
            expired = issue(company, [product])
        answered = issue(company, [product])
        ConsentRequest.objects.filter(pk=answered.request.pk).update(answered_at=timezone.now())
        return {
            "unknown": "x" * 43,
            "used": used.token,
            "expired": expired.token,
            "answered": answered.token,
            "truncated": used.token[:-1],
            "malformed": "not a token!",
        }

    def answers(self, company, product):
        tokens = self.bad_tokens(company, product)
        return {name: Client().get(link_path(token)) for name, token in tokens.items()}

    def test_they_get_byte_identical_answers(self, company, product):
        answers = self.answers(company, product)
        reference = answers["unknown"]
        assert reference.status_code == 404
        assert b"This link is not valid" in reference.content
        for name, response in answers.items():
            assert (name, response.status_code) == (name, 404)
            assert response.content == reference.content, name
            assert "Set-Cookie" not in response.headers or "sessionid" not in str(response.cookies)

    def test_pressing_continue_on_them_gets_the_same_bytes_as_opening_them(self, company, product):
        tokens = self.bad_tokens(company, product)
        reference = Client().get(link_path("x" * 43))
        # A browser holding a good CSRF token, as one that loaded a Continue page does.
        browser = Client(enforce_csrf_checks=True)
        page = continue_page(browser, issue(company, [product]).token)
        for name, token in tokens.items():
            opened = browser.get(link_path(token))
            pressed = press_continue(browser, token, page)
            for method, response in (("GET", opened), ("POST", pressed)):
                assert (name, method, response.status_code) == (name, method, 404)
                assert response.content == reference.content, (name, method)
                assert "sessionid" not in response.cookies, (name, method)
        # Only the link spent on purpose is marked opened: no press on a bad link opened one.
        assert ConsentRequest.objects.exclude(opened_at=None).count() == 1

    def test_a_used_link_replayed_records_nothing(self, client, company, product):
        issued = issue(company, [product])
        open_link(client, issued.token)
        grant_through_page(client, product)
        events = ConsentEvent.objects.count()
        replay = Client()
        assert replay.get(link_path(issued.token)).status_code == 404
        assert replay.post(link_path(issued.token)).status_code == 404
        assert replay.get(reverse("consent:request")).status_code == 404
        assert ConsentEvent.objects.count() == events

    def test_an_expired_session_request_cannot_be_answered(self, client, company, product):
        issued = issue(company, [product])
        open_link(client, issued.token)
        ConsentRequest.objects.filter(pk=issued.request.pk).update(
            created_at=timezone.now() - timedelta(days=9),
            expires_at=timezone.now() - timedelta(seconds=1),
        )
        assert client.get(reverse("consent:request")).status_code == 404
        response = client.post(
            reverse("consent:request"), {"product": product.pk, "text": 1, "decision": "grant"}
        )
        assert response.status_code == 404
        assert not ConsentEvent.objects.exists()

    def test_a_session_of_one_company_cannot_read_or_change_another(self, client, company, product):
        other = CompanyFactory(name="Other Ltd")
        other_client = Client()
        open_link(other_client, issue(other, [product]).token)
        receipt = grant_through_page(other_client, product)
        receipt_path = receipt["Location"]
        # A session for `company` sees neither the other company's receipt nor its consent.
        open_link(client, issue(company, [product]).token)
        assert client.get(receipt_path).status_code == 404
        assert client.get(receipt_path.rstrip("/") + ".json").status_code == 404
        response = client.post(reverse("consent:withdraw"), {"product": product.pk})
        assert response.status_code == 404
        assert ConsentEvent.objects.filter(company=other, action="withdraw").count() == 0

    def test_no_session_means_not_valid(self, client):
        for name in ("consent:request", "consent:manage"):
            assert client.get(reverse(name)).status_code == 404


class TestRateLimit:
    def test_brute_force_gets_429(self, settings, company, product):
        settings.CONSENT_RATE_LIMIT = "5/m"
        client = Client(REMOTE_ADDR="198.51.100.7")
        statuses = [client.get(link_path(f"guess-{n:040d}")).status_code for n in range(8)]
        assert statuses[:5] == [404] * 5
        assert statuses[5:] == [429] * 3
        # Even a valid link is refused from that address until the window passes...
        issued = issue(company, [product])
        assert client.get(link_path(issued.token)).status_code == 429
        assert client.post(link_path(issued.token)).status_code == 429
        # ...while another address is not affected, and the link was not spent.
        open_link(Client(REMOTE_ADDR="198.51.100.8"), issued.token)

    def test_pressing_continue_counts_towards_the_limit(self, settings, company, product):
        settings.CONSENT_RATE_LIMIT = "3/m"
        client = Client(REMOTE_ADDR="198.51.100.10")
        issued = issue(company, [product])
        page = continue_page(client, issued.token)
        guesses = [client.post(link_path(f"guess-{n:040d}")).status_code for n in range(2)]
        assert guesses == [404, 404]
        assert press_continue(client, issued.token, page).status_code == 429
        issued.request.refresh_from_db()
        assert issued.request.opened_at is None

    def test_the_manage_link_is_limited_too(self, settings):
        settings.CONSENT_RATE_LIMIT = "2/m"
        client = Client(REMOTE_ADDR="198.51.100.9")
        path = reverse("consent:manage_link", kwargs={"signed": "forged:value"})
        assert [client.get(path).status_code for _ in range(3)] == [404, 404, 429]

    def test_a_cache_outage_does_not_lock_owners_out(self, settings, company, product):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:1/0",
            }
        }
        issued = issue(company, [product])
        open_link(Client(), issued.token)


class TestCsrf:
    def test_every_consent_post_needs_the_csrf_token(self, company, product):
        client = Client(enforce_csrf_checks=True)
        open_link(client, issue(company, [product]).token)
        for name in ("consent:request", "consent:withdraw", "consent:reconfirm"):
            response = client.post(reverse(name), {"product": product.pk})
            assert response.status_code == 403, name
        assert not ConsentEvent.objects.exists()

    def test_continue_needs_the_csrf_token_and_a_refused_press_spends_nothing(
        self, company, product
    ):
        issued = issue(company, [product])
        client = Client(enforce_csrf_checks=True)
        page = continue_page(client, issued.token)
        assert client.post(link_path(issued.token)).status_code == 403
        forged = press_continue(client, issued.token, page, HTTP_ORIGIN="https://evil.example")
        assert forged.status_code == 403
        issued.request.refresh_from_db()
        assert issued.request.opened_at is None
        # Under Referrer-Policy: no-referrer the browser's press comes with "Origin: null".
        pressed = press_continue(client, issued.token, page, HTTP_ORIGIN="null")
        assert pressed["Location"] == reverse("consent:request")

    def test_a_no_referrer_origin_is_accepted_with_the_token_and_another_origin_is_not(
        self, company, product
    ):
        # Under Referrer-Policy: no-referrer, browsers post with "Origin: null".
        client = Client(enforce_csrf_checks=True)
        open_link(client, issue(company, [product]).token)
        page = client.get(reverse("consent:request"))
        token = page.context["csrf_token"]
        form = {
            "product": product.pk,
            "text": page.context["offers"][0]["text"].pk,
            "decision": "grant",
            "csrfmiddlewaretoken": token,
        }
        forged = client.post(reverse("consent:request"), form, HTTP_ORIGIN="https://evil.example")
        assert forged.status_code == 403
        no_token = client.post(
            reverse("consent:request"),
            {**form, "csrfmiddlewaretoken": "x" * 64},
            HTTP_ORIGIN="null",
        )
        assert no_token.status_code == 403
        assert not ConsentEvent.objects.exists()
        accepted = client.post(reverse("consent:request"), form, HTTP_ORIGIN="null")
        assert accepted.status_code == 302
        assert ConsentEvent.objects.count() == 1

    def test_gets_never_change_state(self, client, company, product):
        open_link(client, issue(company, [product]).token)
        for name in ("consent:withdraw", "consent:reconfirm"):
            assert client.get(reverse(name)).status_code == 405
        client.get(reverse("consent:request"))
        client.get(reverse("consent:manage"))
        assert not ConsentEvent.objects.exists()


def writes_and_locks(queries) -> list[str]:
    """The statements among `queries` that change rows or lock them."""
    return [
        query["sql"]
        for query in queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        or "FOR UPDATE" in query["sql"].upper()
    ]


class TestReadingTheConsentPage:
    """An anonymous GET of the consent page reads the published texts and writes nothing."""

    def test_it_writes_no_row_and_takes_no_lock(self, client, company, product):
        open_link(client, issue(company, [product]).token)
        texts_before = ConsentText.objects.count()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("consent:request"))
        assert response.status_code == 200
        assert writes_and_locks(queries.captured_queries) == []
        assert ConsentText.objects.count() == texts_before

    def test_a_catalogue_change_is_shown_from_the_version_it_published(
        self, client, company, product
    ):
        open_link(client, issue(company, [product]).token)
        # The catalogue gains a data type after the link was sent: it publishes version 2.
        product_define(
            identifier=product.identifier,
            name=product.name,
            kind=product.kind,
            description=product.description,
            data_types=["invoices", "balanceSheet", "bankAccounts", "bills"],
            optional_data_types=("bankAccounts",),
        )
        assert ConsentText.objects.filter(product=product).count() == 2
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("consent:request"))
        assert writes_and_locks(queries.captured_queries) == []
        (offer,) = response.context["offers"]
        assert offer["text"].version == 2
        assert "bills" in [item["identifier"] for item in offer["text"].content["data_types"]]


class TestDecisionPage:
    def test_the_page_names_the_enterprise_the_use_case_and_each_data_type(
        self, client, company, product
    ):
        open_link(client, issue(company, [product]).token)
        response = client.get(reverse("consent:request"))
        html = response.content.decode()
        assert response.status_code == 200
        assert "Northwind Lending plc" in html
        assert "Use case: Lending" in html
        assert product.description in html
        text = response.context["offers"][0]["text"]
        for item in text.content["data_types"]:
            assert item["name"] in html
            assert item["description"] in html
        assert "withdraw this consent at any time" in html
        # The optional data type is a labelled checkbox; the page needs no script.
        assert f'<label for="dt-{product.pk}-bankAccounts">' in html
        assert "<script" not in html
        assert 'lang="en-gb"' in html

    def test_grant_leads_to_a_receipt_of_what_was_shown(self, client, company, product):
        open_link(client, issue(company, [product]).token)
        response = grant_through_page(client, product, optional=["bankAccounts"])
        assert response.status_code == 302
        event = ConsentEvent.objects.get()
        assert response["Location"] == reverse("consent:receipt", args=[event.receipt_id])
        assert event.data_types == ["balanceSheet", "bankAccounts", "invoices"]
        assert event.channel == "link"
        assert event.client["ip_network"] == "127.0.0.0/24"
        receipt = client.get(response["Location"])
        html = receipt.content.decode()
        assert receipt.status_code == 200
        assert str(event.receipt_id) in html
        assert event.text_hash in html
        assert reverse("consent:manage") in html
        assert "/consent/manage/link/" in html

    def test_the_json_receipt_has_the_kantara_fields(self, client, company, product):
        open_link(client, issue(company, [product]).token)
        grant_through_page(client, product)
        event = ConsentEvent.objects.get()
        response = client.get(reverse("consent:receipt_json", args=[event.receipt_id]))
        assert response["Content-Type"] == "application/json"
        receipt = json.loads(response.content)
        for field in (
            "version",
            "jurisdiction",
            "consentTimestamp",
            "collectionMethod",
            "consentReceiptID",
            "language",
            "piiPrincipalId",
            "piiControllers",
            "policyUrl",
            "services",
            "sensitive",
            "spiCat",
        ):
            assert field in receipt, field
        assert receipt["consentReceiptID"] == str(event.receipt_id)
        assert receipt["consentTimestamp"] == int(event.occurred_at.timestamp())
        assert receipt["piiControllers"][0]["piiController"] == "Northwind Lending plc"
        purpose = receipt["services"][0]["purposes"][0]
        assert receipt["services"][0]["service"] == "Lending"
        assert purpose["consentType"] == "EXPLICIT"
        assert set(purpose["piiCategory"]) == {"Invoices", "Balance sheet"}
        assert purpose["thirdPartyName"] == "Codat Ltd"
        assert receipt["x-portal"]["decisions"][0]["textHash"] == event.text_hash

    def test_declining_records_a_decline(self, client, company, product):
        open_link(client, issue(company, [product]).token)
        page = client.get(reverse("consent:request"))
        client.post(
            reverse("consent:request"),
            {
                "product": product.pk,
                "text": page.context["offers"][0]["text"].pk,
                "decision": "decline",
            },
        )
        assert ConsentEvent.objects.get().action == "decline"

    def test_several_use_cases_are_answered_one_by_one(
        self, client, company, product, other_product
    ):
        open_link(client, issue(company, [product, other_product]).token)
        first = grant_through_page(client, product)
        assert b"Answer the other use cases" in client.get(first["Location"]).content
        page = client.get(reverse("consent:request"))
        assert [offer["product"] for offer in page.context["offers"]] == [other_product]
        grant_through_page(client, other_product)
        final = client.get(reverse("consent:request"))
        assert final.status_code == 302, final.content.decode()[:3000]
        assert final["Location"] == reverse("consent:manage")

    def test_a_tampered_form_is_refused_without_evidence(
        self, client, company, product, other_product
    ):
        open_link(client, issue(company, [product]).token)
        other_text = selectors.consent_text_current(product=other_product)
        response = client.post(
            reverse("consent:request"),
            {"product": other_product.pk, "text": other_text.pk, "decision": "grant"},
        )
        assert response.status_code == 400
        assert not ConsentEvent.objects.exists()


class TestManagePage:
    def test_the_signed_manage_link_works_after_the_consent_link_is_spent(
        self, client, company, product
    ):
        issued = issue(company, [product])
        open_link(client, issued.token)
        grant_through_page(client, product)
        browser = Client()
        response = browser.get(issued.manage_url.removeprefix("http://127.0.0.1:8000"))
        assert response["Location"] == reverse("consent:manage")
        page = browser.get(reverse("consent:manage"))
        assert b"Withdraw my consent for Lending" in page.content

    def test_a_forged_or_expired_manage_link_is_not_valid(self, settings, company):
        reference = Client().get(link_path("x" * 43)).content
        forged = reverse("consent:manage_link", kwargs={"signed": "eyJjb21wYW55IjoxfQ:abc:def"})
        assert Client().get(forged).content == reference
        manage_url = services.public_url(services.manage_link_path(company))
        settings.CONSENT_MANAGE_LINK_TTL = timedelta(seconds=-1)
        expired = Client().get(manage_url.removeprefix("http://127.0.0.1:8000"))
        assert (expired.status_code, expired.content) == (404, reference)

    def test_withdrawing_takes_no_more_steps_than_granting(self, client, company, product):
        # Granting: open the page, press "I agree" (one POST). Withdrawing: open the manage
        # page, press "Withdraw" (one POST).
        open_link(client, issue(company, [product]).token)
        grant_through_page(client, product)
        page = client.get(reverse("consent:manage"))
        assert page.status_code == 200
        response = client.post(reverse("consent:withdraw"), {"product": product.pk})
        assert response.status_code == 302
        withdrawn = ConsentEvent.objects.get(action="withdraw")
        assert withdrawn.channel == "manage"
        assert response["Location"] == reverse("consent:receipt", args=[withdrawn.receipt_id])
        # A second press (another tab) records nothing more.
        client.post(reverse("consent:withdraw"), {"product": product.pk})
        assert ConsentEvent.objects.filter(action="withdraw").count() == 1
        assert b"You withdrew your consent" in client.get(reverse("consent:manage")).content

    def test_reconfirming_from_the_manage_page(self, settings, client, company, product):
        settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
        open_link(client, issue(company, [product]).token)
        grant_through_page(client, product)
        response = client.post(reverse("consent:reconfirm"), {"product": product.pk})
        assert response.status_code == 302
        assert ConsentEvent.objects.filter(action="reconfirm", channel="manage").count() == 1


def test_the_confirm_button_appears_only_under_a_reconfirmation_policy(
    settings, client, company, product
):
    open_link(client, issue(company, [product]).token)
    grant_through_page(client, product)
    assert b"Confirm my consent" not in client.get(reverse("consent:manage")).content
    settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
    assert b"Confirm my consent" in client.get(reverse("consent:manage")).content
