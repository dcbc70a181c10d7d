"""Invariant 4 at every entry point: the operations services refuse a Codat read without consent,
whoever calls them; a withdrawal writes the removal; an add can wait for consent."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent import selectors, services
from consent.models import ConsentChannel, ConsentEvent, ConsentRequest
from consent.selectors import companies_refused_for_consent
from operations import services as operations
from operations.models import Operation, OperationKind, OperationState
from operations.services import OperationRefused
from operations.worker import operation_run
from products.models import CompanyProduct
from tests.consent.helpers import grant
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConsentEventFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db

MANAGE = services.Actor(channel=ConsentChannel.MANAGE)


def operations_of(kind, company, product=None):
    rows = Operation.objects.filter(kind=kind, company=company)
    if product is not None:
        rows = rows.filter(product=product)
    return list(rows)


class TestAddProduct:
    def test_it_is_refused_without_consent(self, company, product):
        with pytest.raises(OperationRefused, match="no consent recorded"):
            operations.product_add(company=company, product=product)
        assert not Operation.objects.exists()
        assert not CompanyProduct.objects.exists()

    def test_it_goes_ahead_with_consent(self, company, product):
        grant(company, product)
        operation = operations.product_add(company=company, product=product)
        assert (operation.kind, operation.state) == (OperationKind.ADD_PRODUCT, "pending")

    def test_a_bulk_add_skips_the_companies_without_consent_with_the_reason(self, company, product):
        consenting = CompanyFactory()
        grant(consenting, product)
        _job, plan = operations.operations_start(
            kind=OperationKind.ADD_PRODUCT,
            company_ids=[company.pk, consenting.pk],
            product=product,
        )
        assert plan.queued == [consenting.pk]
        assert plan.skipped == {company.pk: "Lending: no consent recorded"}
        preview = operations.operations_preview(
            kind=OperationKind.ADD_PRODUCT, company_ids=[company.pk], product=product
        )
        assert company.pk in preview.skipped

    def test_withdrawn_declined_and_lapsed_consent_are_refused_with_their_reason(
        self, settings, product
    ):
        withdrawn, declined, lapsed = CompanyFactory(), CompanyFactory(), CompanyFactory()
        grant(withdrawn, product)
        services.consent_withdraw(company=withdrawn, product=product, actor=MANAGE)
        operator = StaffFactory(role="operator")
        services.consent_decline(
            company=declined,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.ADMIN, user=operator),
        )
        settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
        with mock.patch(
            "django.utils.timezone.now", return_value=timezone.now() - timedelta(days=91)
        ):
            grant(lapsed, product)
        refused = companies_refused_for_consent(
            company_ids=[withdrawn.pk, declined.pk, lapsed.pk], product=product
        )
        assert refused == {
            withdrawn.pk: "Lending: consent withdrawn",
            declined.pk: "Lending: consent declined",
            lapsed.pk: "Lending: consent must be reconfirmed by the customer",
        }

    def test_a_new_required_data_type_needs_new_consent(self, company, product):
        from products.models import ProductDataType

        grant(company, product)
        ProductDataType.objects.create(product=product, data_type_id="journals")
        with pytest.raises(OperationRefused, match="no consent for journals"):
            operations.product_add(company=company, product=product)


class TestRefresh:
    @pytest.fixture
    def assigned(self, company, product):
        CompanyProductFactory(company=company, product=product)
        return company

    def test_a_product_refresh_is_refused_without_consent(self, assigned, product):
        with pytest.raises(OperationRefused, match="no consent recorded"):
            operations.product_refresh(company=assigned, product=product)

    def test_a_product_refresh_goes_ahead_with_consent(self, assigned, product):
        grant(assigned, product)
        operation = operations.product_refresh(company=assigned, product=product)
        assert operation.kind == OperationKind.REFRESH_PRODUCT

    def test_an_optional_data_type_left_out_cannot_be_refreshed(self, assigned, product):
        grant(assigned, product)
        with pytest.raises(OperationRefused, match="no consent for bankAccounts"):
            operations.product_refresh(
                company=assigned, product=product, data_types=["bankAccounts"]
            )
        operations.product_refresh(company=assigned, product=product, data_types=["invoices"])

    def test_an_optional_data_type_picked_can_be_refreshed(self, assigned, product):
        grant(assigned, product, optional=["bankAccounts"])
        operations.product_refresh(company=assigned, product=product, data_types=["bankAccounts"])

    def test_client_level_refreshes_need_consent_for_what_they_read(self, company, product):
        with pytest.raises(OperationRefused, match="no active consent"):
            operations.company_refresh_all_data(company=company)
        with pytest.raises(OperationRefused, match="no active consent"):
            operations.company_refresh_data_type(company=company, data_type="invoices")
        grant(company, product)
        operations.company_refresh_data_type(company=company, data_type="invoices")
        with pytest.raises(OperationRefused, match="no consent for bills"):
            operations.company_refresh_data_type(company=company, data_type="bills")
        operations.company_refresh_all_data(company=company)

    def test_reconfirmation_policy_stops_refreshes_until_the_owner_reconfirms(
        self, settings, assigned, product
    ):
        settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
        with mock.patch(
            "django.utils.timezone.now", return_value=timezone.now() - timedelta(days=91)
        ):
            grant(assigned, product)
        with pytest.raises(OperationRefused, match="reconfirmed"):
            operations.product_refresh(company=assigned, product=product)
        services.consent_reconfirm(company=assigned, product=product, actor=MANAGE)
        operations.product_refresh(company=assigned, product=product)

    def test_a_refresh_queued_before_the_withdrawal_is_cancelled_when_its_turn_comes(
        self, settings, redis_url, assigned, product
    ):
        settings.REDIS_URL = redis_url  # the fleet pause key the worker reads first
        grant(assigned, product)
        queued = operations.product_refresh(company=assigned, product=product)
        services.consent_withdraw(company=assigned, product=product, actor=MANAGE)
        with mock.patch("operations.worker.codat_client") as client:
            assert operation_run(operation_id=queued.pk) == "cancelled"
        client.assert_not_called()
        queued.refresh_from_db()
        assert queued.state == OperationState.CANCELLED
        assert queued.last_error == "consent: Lending: consent withdrawn"

    def test_a_refresh_still_covered_is_attempted(self, settings, redis_url, assigned, product):
        settings.REDIS_URL = redis_url
        grant(assigned, product)
        queued = operations.product_refresh(company=assigned, product=product)
        with mock.patch("operations.worker._attempt", return_value="succeeded") as attempt:
            assert operation_run(operation_id=queued.pk) == "succeeded"
        attempt.assert_called_once()

    def test_the_reconfirmation_policy_is_off_by_default(self, assigned, product):
        with mock.patch(
            "django.utils.timezone.now", return_value=timezone.now() - timedelta(days=400)
        ):
            grant(assigned, product)
        operations.product_refresh(company=assigned, product=product)


class TestWithdrawal:
    def test_it_writes_the_remove_product_operation_and_stops_refreshes(self, company, product):
        grant(company, product)
        operations.product_add(company=company, product=product)
        CompanyProduct.objects.filter(company=company, product=product).update(status="active")
        services.consent_withdraw(company=company, product=product, actor=MANAGE)
        (removal,) = operations_of(OperationKind.REMOVE_PRODUCT, company, product)
        assert removal.state == OperationState.PENDING
        assert CompanyProduct.objects.get(company=company, product=product).status == (
            "pending_removal"
        )
        with pytest.raises(OperationRefused, match="withdrawn"):
            operations.product_refresh(company=company, product=product)

    def test_it_cancels_an_add_that_has_not_run_yet(self, company, product):
        grant(company, product)
        add = operations.product_add(company=company, product=product)
        services.consent_withdraw(company=company, product=product, actor=MANAGE)
        add.refresh_from_db()
        assert add.state == OperationState.CANCELLED
        assert len(operations_of(OperationKind.REMOVE_PRODUCT, company, product)) == 1

    def test_the_evidence_and_the_removal_commit_together(self, company, product):
        grant(company, product)
        CompanyProductFactory(company=company, product=product)
        with (
            mock.patch("consent.effects.product_remove", side_effect=RuntimeError),
            pytest.raises(RuntimeError),
        ):
            services.consent_withdraw(company=company, product=product, actor=MANAGE)
        assert not company.consent_events.filter(action="withdraw").exists()

    def test_the_reconciler_asks_again_for_a_removal_that_failed(self, company, product):
        grant(company, product)
        CompanyProductFactory(company=company, product=product)
        services.consent_withdraw(company=company, product=product, actor=MANAGE)
        # Codat refused the removal for good; the assignment stayed active.
        Operation.objects.filter(kind=OperationKind.REMOVE_PRODUCT).update(
            state=OperationState.FAILED
        )
        CompanyProduct.objects.filter(company=company).update(status="active")
        counts = services.consent_reconcile()
        assert counts["removals"] == 1
        assert len(operations_of(OperationKind.REMOVE_PRODUCT, company, product)) == 2
        # Nothing more to do on the next pass: the removal is live.
        assert services.consent_reconcile()["removals"] == 0
        assert len(operations_of(OperationKind.REMOVE_PRODUCT, company, product)) == 2

    def test_a_company_without_the_product_needs_no_removal(self, company, product):
        grant(company, product)
        services.consent_withdraw(company=company, product=product, actor=MANAGE)
        assert not Operation.objects.exists()


class TestAddAwaitingConsent:
    def test_without_consent_the_add_waits_and_goes_ahead_once_granted(self, company, product):
        operator = StaffFactory(role="operator")
        outcome = services.product_add_or_request_consent(
            company=company, product=product, user=operator
        )
        assert not outcome.added
        assert outcome.issued.request.reason == "product_added"
        assert not Operation.objects.exists()
        # The owner grants through the link the add sent.
        request = services.consent_link_exchange(token=outcome.issued.token)
        services.consent_grant(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.LINK),
            request=request,
        )
        (add,) = operations_of(OperationKind.ADD_PRODUCT, company, product)
        assert add.requested_by == operator
        assert ConsentRequest.objects.get().product_add_settled_at is not None

    def test_a_decline_drops_the_waiting_add(self, company, product):
        outcome = services.product_add_or_request_consent(company=company, product=product)
        request = services.consent_link_exchange(token=outcome.issued.token)
        services.consent_decline(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.LINK),
            request=request,
        )
        assert not Operation.objects.exists()
        assert ConsentRequest.objects.get().product_add_settled_at is not None

    def test_with_consent_the_add_goes_ahead_at_once(self, company, product):
        grant(company, product)
        outcome = services.product_add_or_request_consent(company=company, product=product)
        assert outcome.added and outcome.issued is None
        assert len(operations_of(OperationKind.ADD_PRODUCT, company, product)) == 1

    def test_bulk_requests_make_each_add_wait_and_go_ahead_on_that_companys_grant(self, product):
        # given two companies asked in one go, in a fixed number of queries
        operator = StaffFactory(role="operator")
        services.consent_text_publish(product=product)
        first, second = CompanyFactory(), CompanyFactory()
        with CaptureQueriesContext(connection) as few:
            services.product_add_consent_requests_create(
                companies=[first], product=product, user=operator
            )
        with CaptureQueriesContext(connection) as many:
            issued = services.product_add_consent_requests_create(
                companies=[first, second], product=product
            )
        assert len(few) == len(many)
        assert not Operation.objects.exists()
        # when the second company grants through its link
        link = next(link for link in issued if link.request.company_id == second.pk)
        request = services.consent_link_exchange(token=link.token)
        services.consent_grant(
            company=second,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.LINK),
            request=request,
        )
        # then its add goes ahead, and the first company's keeps waiting
        assert len(operations_of(OperationKind.ADD_PRODUCT, second, product)) == 1
        assert not operations_of(OperationKind.ADD_PRODUCT, first, product)
        assert (
            ConsentRequest.objects.filter(
                company=first, product_add_settled_at__isnull=True
            ).count()
            == 2
        )


class TestReconciler:
    """consent_reconcile runs every five minutes over every company: set-based, idempotent."""

    def companies_needing_work(self, count, product, *, now):
        """`count` companies each of: withdrawn with the product still active at Codat (a
        removal to ask again), lapsed under the reconfirmation policy, and covered."""
        for _ in range(count):
            withdrawn = CompanyFactory()
            ConsentEventFactory(company=withdrawn, product=product, occurred_at=now)
            ConsentEventFactory(
                company=withdrawn, product=product, action="withdraw", channel="manage"
            )
            CompanyProductFactory(company=withdrawn, product=product, status="active")
            lapsed = CompanyFactory()
            ConsentEventFactory(
                company=lapsed, product=product, occurred_at=now - timedelta(days=91)
            )
            ConsentEventFactory(company=CompanyFactory(), product=product, occurred_at=now)

    def test_it_makes_the_same_number_of_queries_for_few_or_many_companies(
        self, settings, product, other_product
    ):
        settings.CONSENT_RECONFIRM_AFTER_DAYS = 90
        now = timezone.now()
        counts, query_counts = [], []
        for size in (2, 7):
            # The companies of the first pass stay: their work is done, so they only add rows.
            self.companies_needing_work(size, product, now=now)
            self.companies_needing_work(size, other_product, now=now)
            with CaptureQueriesContext(connection) as queries:
                counts.append(services.consent_reconcile(now=now))
            query_counts.append(len(queries.captured_queries))
        assert counts == [{"expired": 4, "removals": 4}, {"expired": 14, "removals": 14}]
        assert query_counts[0] == query_counts[1]
        assert Operation.objects.filter(kind=OperationKind.REMOVE_PRODUCT).count() == 18
        assert CompanyProduct.objects.filter(status="pending_removal").count() == 18
        expiries = ConsentEvent.objects.filter(action="expire")
        assert expiries.count() == 18
        assert all(event.text_hash == event.text.content_hash for event in expiries)
        assert services.consent_reconcile(now=now) == {"expired": 0, "removals": 0}

    def test_an_add_asked_after_a_decline_still_waits_for_the_new_consent(self, company, product):
        operator = StaffFactory(role="operator")
        services.consent_decline(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.ADMIN, user=operator),
        )
        # Later the operator adds the product again, which sends a new consent request.
        outcome = services.product_add_or_request_consent(
            company=company, product=product, user=operator
        )
        services.consent_reconcile()
        request = services.consent_link_exchange(token=outcome.issued.token)
        services.consent_grant(
            company=company,
            product=product,
            text=selectors.consent_text_current(product=product),
            actor=services.Actor(channel=ConsentChannel.LINK),
            request=request,
        )
        (add,) = operations_of(OperationKind.ADD_PRODUCT, company, product)
        assert add.requested_by == operator
