"""Consent services: text versions, requests, decisions, derived state, reconfirmation."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from consent import selectors, services
from consent.errors import ConsentAlreadyAnswered, ConsentError, ConsentLinkInvalid
from consent.models import ConsentAction, ConsentChannel, ConsentEvent, ConsentText
from consent.selectors import ConsentState, consent_covers, consent_matrix, consent_state
from consent.texts import content_hash
from consent.tokens import token_hash
from products.models import DataType, ProductDataType
from tests.consent.helpers import LINK, grant, open_request
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def clock_at(moment):
    """Services read the time through django.utils.timezone.now: move it."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


class TestConsentTexts:
    def test_the_first_text_is_version_1_with_the_hash_of_its_canonical_content(self, product):
        text = selectors.consent_text_current(product=product)
        assert text.version == 1
        assert text.content_hash == content_hash(text.content)
        assert text.content["purpose"] == product.description
        assert [item["identifier"] for item in text.content["data_types"]] == [
            "balanceSheet",
            "invoices",
            "bankAccounts",
        ]
        assert text.content["data_types"][2]["optional"] is True
        assert text.content["controller"]["name"] == "Northwind Lending plc"
        descriptions = {
            item["identifier"]: item["description"] for item in text.content["data_types"]
        }
        assert descriptions["invoices"] == DataType.objects.get(pk="invoices").description

    def test_nothing_changed_means_no_new_version(self, product):
        first = selectors.consent_text_current(product=product)
        assert services.consent_text_publish(product=product) == first
        assert ConsentText.objects.count() == 1

    def test_editing_the_purpose_publishes_a_new_version_with_another_hash(self, product):
        first = selectors.consent_text_current(product=product)
        second = services.consent_text_publish(product=product, purpose="A clearer purpose.")
        assert (second.version, second.purpose) == (2, "A clearer purpose.")
        assert second.content_hash != first.content_hash
        # The retention carries over from the version before.
        assert second.retention == first.retention

    def test_a_reworded_data_type_description_makes_a_new_version(self, product):
        first = selectors.consent_text_current(product=product)
        DataType.objects.filter(pk="invoices").update(description="Bills you sent to customers.")
        # Reading never publishes: the version changes when it is published.
        assert selectors.consent_text_current(product=product) == first
        second = services.consent_text_publish(product=product)
        assert second.version == first.version + 1
        assert selectors.consent_text_current(product=product) == second

    def test_a_version_is_never_edited_or_deleted(self, product):
        text = selectors.consent_text_current(product=product)
        text.purpose = "changed"
        with pytest.raises(Exception, match="never edited"):
            text.save()
        with pytest.raises(Exception, match="never deleted"):
            text.delete()


class TestConsentRequests:
    def test_the_token_has_256_bits_and_only_its_hash_is_stored(self, company, product):
        issued = services.consent_request_create(company=company, products=[product])
        assert len(issued.token) >= 43  # 32 bytes, URL-safe base64
        assert issued.request.token_hash == token_hash(issued.token)
        assert issued.token not in str(issued.request.__dict__)
        assert issued.url.endswith(f"/consent/link/{issued.token}/")

    def test_it_expires_after_the_configured_ttl(self, settings, company, product):
        settings.CONSENT_LINK_TTL = timedelta(days=3)
        issued = services.consent_request_create(company=company, products=[product])
        lifetime = issued.request.expires_at - issued.request.created_at
        assert lifetime == timedelta(days=3)

    def test_the_email_goes_out_after_commit_with_the_link_and_the_manage_link(
        self, company, product, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            issued = services.consent_request_create(
                company=company, products=[product], email="owner@acme.example"
            )
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["owner@acme.example"]
        assert "Northwind Lending plc" in message.subject
        assert issued.url in message.body
        assert issued.manage_url in message.body
        issued.request.refresh_from_db()
        assert issued.request.emailed_at is not None

    def test_a_campaign_makes_one_request_per_company(self, company, product):
        from tests.factories import CompanyFactory

        other = CompanyFactory(tags={"email": "boss@other.example"})
        campaign, issued = services.consent_campaign_create(
            name="Spring", products=[product], companies=[company, other], emails={}
        )
        assert [link.request.company for link in issued] == [company, other]
        assert [link.request.email for link in issued] == ["", "boss@other.example"]
        assert campaign.requests.count() == 2


class TestDecisions:
    def test_a_grant_covers_required_and_picked_optional_data_types(self, company, product):
        event = grant(company, product, optional=["bankAccounts"])
        assert event.action == ConsentAction.GRANT
        assert event.data_types == ["balanceSheet", "bankAccounts", "invoices"]
        assert event.text_hash == selectors.consent_text_current(product=product).content_hash
        assert event.token_hash == event.request.token_hash
        assert event.client == {"ip_network": "127.0.0.0/24"}
        assert consent_covers(company, product)
        assert consent_state(company=company, product=product).data_types == {
            "balanceSheet",
            "bankAccounts",
            "invoices",
        }

    def test_leaving_optional_data_types_out_still_covers_the_product(self, company, product):
        grant(company, product)
        assert consent_covers(company, product)
        assert "bankAccounts" not in consent_state(company=company, product=product).data_types

    def test_an_optional_data_type_that_was_not_shown_cannot_be_picked(self, company, product):
        with pytest.raises(ConsentError, match="optional"):
            grant(company, product, optional=["invoices", "journals"])

    def test_one_request_answers_once_per_product(self, company, product):
        request = open_request(company, [product])
        grant(company, product, request=request)
        with pytest.raises(ConsentAlreadyAnswered):
            grant(company, product, request=request)
        request.refresh_from_db()
        assert request.answered_at is not None

    def test_a_request_of_another_company_is_refused(self, company, product):
        from tests.factories import CompanyFactory

        request = open_request(CompanyFactory(), [product])
        with pytest.raises(ConsentLinkInvalid):
            grant(company, product, request=request)

    def test_a_product_outside_the_request_is_refused(self, company, product, other_product):
        request = open_request(company, [product])
        with pytest.raises(ConsentLinkInvalid):
            grant(company, other_product, request=request)

    def test_withdrawal_ends_consent_and_records_what_was_covered(self, company, product):
        granted = grant(company, product)
        actor = services.Actor(channel=ConsentChannel.MANAGE)
        withdrawn = services.consent_withdraw(company=company, product=product, actor=actor)
        assert withdrawn.action == ConsentAction.WITHDRAW
        assert withdrawn.data_types == granted.data_types
        assert withdrawn.text_hash == granted.text_hash
        assert consent_state(company=company, product=product).state == ConsentState.WITHDRAWN
        assert not consent_covers(company, product)
        with pytest.raises(ConsentError):
            services.consent_withdraw(company=company, product=product, actor=actor)

    def test_a_decline_ends_earlier_consent(self, company, product):
        grant(company, product)
        services.consent_decline(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=LINK,
            request=open_request(company, [product]),
        )
        assert consent_state(company=company, product=product).state == ConsentState.DECLINED
        assert not consent_covers(company, product)

    def test_an_operator_acting_for_the_customer_is_named(self, company, product):
        operator = StaffFactory(role="operator", first_name="Olive", last_name="Ops")
        event = services.consent_grant(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.ADMIN, user=operator),
        )
        assert (event.channel, event.actor, event.actor_name) == ("admin", operator, "Olive Ops")
        with pytest.raises(ConsentError, match="named"):
            services.consent_grant(
                company=company,
                product=product,
                text=selectors.consent_text_current(product=product),
                actor=services.Actor(channel=ConsentChannel.ADMIN),
            )

    def test_a_required_data_type_added_later_is_not_covered(self, company, product):
        grant(company, product)
        ProductDataType.objects.create(product=product, data_type_id="journals")
        assert not consent_covers(company, product)

    def test_every_event_carries_the_evidence_fields(self, company, product):
        grant(company, product)
        services.consent_withdraw(
            company=company, product=product, actor=services.Actor(channel=ConsentChannel.MANAGE)
        )
        for event in ConsentEvent.objects.all():
            assert event.occurred_at.utcoffset() == timedelta(0)
            assert event.company_id and event.product_id and event.data_types
            assert len(event.text_hash) == 64 and event.channel
        assert ConsentEvent.objects.filter(action="grant").get().token_hash


class TestReconfirmation:
    def test_off_by_default(self, company, product):
        event = grant(company, product)
        later = event.occurred_at + timedelta(days=3650)
        assert consent_covers(company, product, now=later)

    def test_consent_older_than_the_policy_stops_covering_until_reconfirmed(
        self, settings, company, product
    ):
        settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
        now = timezone.now()
        with clock_at(now - timedelta(days=91)):
            grant(company, product)
        assert not consent_covers(company, product)
        assert consent_covers(company, product, now=now - timedelta(days=2))
        assert consent_state(company=company, product=product).state == (
            ConsentState.RECONFIRM_NEEDED
        )
        # The reconciler records the lapse once.
        assert services.consent_reconcile()["expired"] == 1
        assert services.consent_reconcile()["expired"] == 0
        assert list(ConsentEvent.objects.order_by("id").values_list("action", flat=True)) == [
            "grant",
            "expire",
        ]
        assert not consent_covers(company, product)
        # A reconfirmation counts from now: covered again, for another 90 days.
        services.consent_reconfirm(
            company=company, product=product, actor=services.Actor(channel=ConsentChannel.MANAGE)
        )
        assert consent_covers(company, product)
        assert consent_covers(company, product, now=now + timedelta(days=89))
        assert not consent_covers(company, product, now=now + timedelta(days=91))


def test_the_matrix_shows_required_consented_and_missing(company, product, other_product):
    grant(company, product)
    columns, rows = consent_matrix(company=company, products=[product, other_product])
    assert columns == ["balanceSheet", "bankAccounts", "bills", "invoices"]
    by_product = {row.product: row for row in rows}
    lending = {cell.data_type: cell for cell in by_product[product].cells}
    assert lending["invoices"].consented and not lending["invoices"].missing
    assert lending["bankAccounts"].optional and not lending["bankAccounts"].consented
    assert by_product[product].covered
    expenses = {cell.data_type: cell for cell in by_product[other_product].cells}
    assert expenses["bills"].missing
    assert not by_product[other_product].covered
