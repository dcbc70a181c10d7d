"""The sweeper takes back rows whose worker died, and gives up on a row that keeps killing it."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from operations.models import OperationState
from operations.sweeper import operations_sweep
from products.models import CompanyProductStatus
from tests.factories import CompanyProductFactory, OperationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]


def stuck_add(settings, *, abandoned_claims: int):
    """An add whose worker took it longer ago than any call can last, and never finished."""
    assignment = CompanyProductFactory(status=CompanyProductStatus.PENDING_ADD)
    claimed_at = timezone.now() - timedelta(seconds=settings.CODAT_OPERATIONS_STUCK_SECONDS + 5)
    operation = OperationFactory(
        company=assignment.company,
        product=assignment.product,
        state=OperationState.RUNNING,
        claimed_at=claimed_at,
        claim_token=uuid.uuid4(),
        attempts=abandoned_claims + 1,
        abandoned_claims=abandoned_claims,
    )
    return operation, assignment


def test_a_row_whose_worker_died_is_given_back_and_sent_again(settings, no_celery):
    operation, assignment = stuck_add(settings, abandoned_claims=0)

    counts = operations_sweep()

    operation.refresh_from_db()
    assert counts["freed"] == 1 and counts["given_up"] == 0
    assert operation.state == OperationState.PENDING
    assert operation.claim_token is None
    assert operation.abandoned_claims == 1
    assert [operation.pk] in no_celery
    assignment.refresh_from_db()
    assert assignment.status == CompanyProductStatus.PENDING_ADD


def test_a_row_that_keeps_killing_its_worker_fails_with_the_reason(settings, no_celery):
    settings.CODAT_OPERATIONS_MAX_ABANDONED_CLAIMS = 3
    operation, assignment = stuck_add(settings, abandoned_claims=2)

    counts = operations_sweep()

    operation.refresh_from_db()
    assert counts["given_up"] == 1 and counts["freed"] == 0
    assert operation.state == OperationState.FAILED
    assert operation.abandoned_claims == 3
    assert "died or hung 3 times" in operation.last_error
    assert operation.finished_at is not None
    assert not any(operation.pk in ids for ids in no_celery)
    assignment.refresh_from_db()
    assert assignment.status == CompanyProductStatus.FAILED


def test_a_row_running_within_its_time_is_left_alone(settings):
    operation, _ = stuck_add(settings, abandoned_claims=2)
    operation.claimed_at = timezone.now()
    operation.save(update_fields=["claimed_at"])

    counts = operations_sweep()

    operation.refresh_from_db()
    assert counts == {"freed": 0, "resent": 0, "given_up": 0}
    assert operation.state == OperationState.RUNNING
