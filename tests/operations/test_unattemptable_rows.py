"""The operations form and the worker against rows that cannot be attempted (issue 17, hole 6):
the confirmation page plans only the kinds it offers, and a row whose call cannot even be built
fails with the reason instead of crashing the worker and staying `running` until the sweep."""

import pytest
from django.urls import reverse

from operations.models import Job, Operation, OperationKind, OperationState
from operations.worker import operation_run
from tests.factories import CompanyFactory, OperationFactory, StaffFactory

CONFIRM = "admin:companies_company_confirm_operation"


@pytest.mark.django_db
@pytest.mark.usefixtures("no_celery")
@pytest.mark.parametrize("kind", ["create_company", "register_consumer", "list_consumers", "x"])
def test_the_confirmation_page_refuses_a_kind_it_does_not_offer_and_plans_nothing(client, kind):
    client.force_login(StaffFactory(role="operator"))
    company = CompanyFactory()

    response = client.post(
        reverse(CONFIRM), {"kind": kind, "company_ids": str(company.pk), "confirm": "1"}
    )

    assert response.status_code == 400
    assert f"kind: {kind!r} is not one of the operations this page offers" in (
        response.content.decode()
    )
    assert not Job.objects.exists()
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_a_row_that_cannot_be_attempted_fails_with_the_reason(settings, redis_url):
    # given: a company creation without the name its call needs (nothing reaches Codat: the
    # call cannot be built, so an unreachable address is as good as any)
    settings.CODAT_BASE_URL, settings.CODAT_API_KEY = "http://127.0.0.1:9", "unused-key"
    operation = OperationFactory(
        kind=OperationKind.CREATE_COMPANY, company=None, product=None, parameters={}
    )

    # when: the worker takes it (no exception escapes)
    outcome = operation_run(operation_id=operation.pk)

    # then
    operation.refresh_from_db()
    assert outcome == "failed"
    assert operation.state == OperationState.FAILED
    assert operation.claim_token is None and operation.finished_at is not None
    assert operation.last_error == "cannot be attempted: KeyError: 'name'"
