"""The services and one worker attempt, run in this process against the sandbox over HTTP."""

import time

import pytest

from companies.codat_import import company_reconcile, mirror_reconcile
from operations import limiter
from operations.kinds import spec_for
from operations.models import Job, Operation, OperationKind, OperationState
from operations.services import (
    OperationRefused,
    company_create,
    company_refresh_data_type,
    job_cancel_rest,
    operations_preview,
    operations_start,
    product_add,
    product_refresh,
    product_remove,
)
from operations.worker import operation_run
from products.models import CompanyProduct
from tests.operations.helpers import (
    custom_product,
    ensure_data_types,
    lending_product,
    link_company,
    make_fleet,
    sandbox_client,
    sandbox_products,
)

# Rows run in this process here; nothing is sent to a broker.
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_celery"),
]


def test_add_product_writes_the_row_and_the_desired_state_then_the_worker_adds_it(
    sandbox, operations_env
):
    # given
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    # when
    operation = product_add(company=company, product=lending)
    # then
    assignment = CompanyProduct.objects.get(company=company, product=lending)
    assert assignment.status == "pending_add"
    assert operation.state == OperationState.PENDING
    assert operation_run(operation_id=operation.pk) == "succeeded"
    operation.refresh_from_db()
    assignment.refresh_from_db()
    assert operation.state == OperationState.SUCCEEDED
    assert operation.attempts == 1
    assert assignment.status == "active"
    assert "lending" in sandbox_products(sandbox)[str(company.codat_id)]
    # A second run of the same row changes nothing.
    assert operation_run(operation_id=operation.pk) == "not-due"


def test_a_second_add_joins_the_live_row(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    first = product_add(company=company, product=lending)
    second = product_add(company=company, product=lending)
    assert first.pk == second.pk
    assert Operation.objects.count() == 1


def test_removal_removes_the_product_at_codat(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    operation_run(operation_id=product_add(company=company, product=lending).pk)
    removal = product_remove(company=company, product=lending)
    assert CompanyProduct.objects.get(company=company).status == "pending_removal"
    assert operation_run(operation_id=removal.pk) == "succeeded"
    assert CompanyProduct.objects.get(company=company).status == "removed"
    assert "lending" not in sandbox_products(sandbox)[str(company.codat_id)]
    # Removing again is refused: there is nothing to remove.
    with pytest.raises(OperationRefused, match="does not have Lending"):
        product_remove(company=company, product=lending)


def test_a_removal_codat_no_longer_needs_counts_as_done(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    CompanyProduct.objects.create(
        company=company, product=lending, status="active", status_changed_at="2026-01-01T00:00Z"
    )
    removal = product_remove(company=company, product=lending)
    assert operation_run(operation_id=removal.pk) == "succeeded"
    removal.refresh_from_db()
    assert removal.result == {"absent": True}


def test_refreshing_a_standard_product_is_refused_with_the_reason(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    operation_run(operation_id=product_add(company=company, product=lending).pk)
    with pytest.raises(OperationRefused, match="Codat does not refresh standard products"):
        product_refresh(company=company, product=lending)
    assert not Operation.objects.filter(kind=OperationKind.REFRESH_PRODUCT).exists()


def test_a_refresh_during_a_running_read_is_joined_not_failed_nor_retried(sandbox, operations_env):
    # given a company with the custom product whose first read (on linking) takes an hour
    sandbox.control("PUT", "datasets", {"durations": {"Fetching": 3600}})
    product = custom_product(sandbox)
    (company,) = make_fleet(sandbox, 1)
    operation_run(operation_id=product_add(company=company, product=product).pk)
    link_company(sandbox, company)
    # when a refresh comes while that read runs
    second = product_refresh(company=company, product=product)
    outcome = operation_run(operation_id=second.pk)
    # then
    second.refresh_from_db()
    assert outcome == "joined"
    assert second.state == OperationState.JOINED
    assert second.attempts == 1
    assert second.transient_failures == 0
    assert "read operation is in progress" in second.last_error
    assert operation_run(operation_id=second.pk) == "not-due"


def test_refresh_data_type_mirrors_the_pull_operation(sandbox, operations_env):
    ensure_data_types(["invoices"])
    (company,) = make_fleet(sandbox, 1)
    stages = ("Queued", "Fetching", "Mapping", "Validating", "Processing")
    sandbox.control("PUT", "datasets", {"durations": dict.fromkeys(stages, 0)})
    link_company(sandbox, company)
    time.sleep(1.0)  # the first reads on linking finish
    operation = company_refresh_data_type(company=company, data_type="invoices")
    outcome = operation_run(operation_id=operation.pk)
    assert outcome == "succeeded", Operation.objects.get(pk=operation.pk).last_error
    operation.refresh_from_db()
    assert company.pull_operations.get().codat_id.hex == operation.result["datasetId"].replace(
        "-", ""
    )


def test_a_permanent_error_fails_the_row_with_codats_message(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    operation = product_add(company=company, product=lending)
    sandbox.request("DELETE", f"/companies/{company.codat_id}")
    assert operation_run(operation_id=operation.pk) == "failed"
    operation.refresh_from_db()
    assert operation.state == OperationState.FAILED
    assert operation.last_error_status == 404
    assert operation.last_error
    assert operation.last_error_correlation_id
    assert CompanyProduct.objects.get(company=company).status == "failed"


def test_a_server_error_is_retried_later_with_the_wait_in_the_row(sandbox, operations_env):
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    operation = product_add(company=company, product=lending)
    sandbox.control("PUT", "faults", {"errorRate": 1.0, "errorStatus": 503})
    assert operation_run(operation_id=operation.pk) == "retrying"
    operation.refresh_from_db()
    assert operation.state == OperationState.PENDING
    assert operation.transient_failures == 1
    assert operation.last_error_status == 503
    assert operation.next_attempt_at > operation.created_at


def test_create_company_creates_it_at_codat_and_in_the_mirror(sandbox, operations_env):
    lending = lending_product()
    operation = company_create(name="Harbour Coffee", products=[lending])
    assert operation_run(operation_id=operation.pk) == "succeeded"
    operation.refresh_from_db()
    assert operation.company.name == "Harbour Coffee"
    assert CompanyProduct.objects.get(company=operation.company).status == "active"
    assert sandbox_products(sandbox)[str(operation.company.codat_id)] == ["lending"]


def test_a_create_whose_answer_was_lost_is_not_made_twice(sandbox, operations_env):
    # given: the create reached Codat once already, but its answer never came back
    operation = company_create(name="Harbour Coffee", products=[])
    spec_for(OperationKind.CREATE_COMPANY).call(sandbox_client(sandbox), operation)
    # when: the row runs, as its first attempt as far as the worker knows (no tag lookup)
    assert operation_run(operation_id=operation.pk) == "succeeded"
    # then: Codat answered with the first response for the row's Idempotency-Key
    names = [c["name"] for c in sandbox.request("GET", "/companies").json()["results"]]
    assert names == ["Harbour Coffee"]
    operation.refresh_from_db()
    assert operation.attempts == 1


def test_a_company_over_the_free_plans_limit_fails_at_once_with_codats_reason(
    sandbox, operations_env
):
    sandbox.control("PUT", "account", {"plan": "Free"})
    for number in range(50):
        sandbox.request("POST", "/companies", json={"name": f"Existing {number}"})
    operation = company_create(name="Fifty-first Ltd", products=[])
    assert operation_run(operation_id=operation.pk) == "failed"
    operation.refresh_from_db()
    assert (operation.state, operation.last_error_status) == (OperationState.FAILED, 402)
    assert operation.last_error == "CompanyValidationException: Company limit exceeded"
    assert operation.transient_failures == 0  # an account limit is not retried


def test_a_bulk_request_says_what_it_will_do_and_cancel_returns_the_desired_state(
    sandbox, operations_env
):
    lending = lending_product()
    companies = make_fleet(sandbox, 5)
    operation_run(operation_id=product_add(company=companies[0], product=lending).pk)
    plan = operations_preview(
        kind="add_product", company_ids=[c.pk for c in companies], product=lending
    )
    assert plan.counts == {"queued": 4, "joined": 0, "skipped": 1}
    job, plan = operations_start(
        kind="add_product", company_ids=[c.pk for c in companies], product=lending
    )
    # The job names the companies it acts on: the one that already has Lending is skipped.
    assert job.description == "Add Lending to 4 companies"
    assert Job.objects.count() == 1
    assert job.operations.count() == 4
    assert job_cancel_rest(job=job) == 4
    assert set(CompanyProduct.objects.values_list("status", flat=True)) == {"active", "removed"}


def test_the_limiter_pause_parks_rows_in_postgres(sandbox, operations_env):
    from datetime import UTC, datetime, timedelta

    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    operation = product_add(company=company, product=lending)
    until = datetime.now(UTC) + timedelta(minutes=30)
    limiter.pause_codat_calls_until(until)
    assert operation_run(operation_id=operation.pk) == "paused"
    operation.refresh_from_db()
    assert operation.state == OperationState.PENDING
    assert operation.attempts == 0
    assert operation.next_attempt_at >= until


def test_the_consent_gate_is_asked_and_its_reason_given(sandbox, operations_env, refuse_consent):
    lending = lending_product()
    first, second = make_fleet(sandbox, 2)
    refuse_consent[second.pk] = "Lending: no consent recorded"
    _, plan = operations_start(
        kind="add_product", company_ids=[first.pk, second.pk], product=lending
    )
    assert plan.queued == [first.pk]
    assert plan.skipped == {second.pk: "Lending: no consent recorded"}
    with pytest.raises(OperationRefused, match="no consent recorded"):
        product_add(company=second, product=lending)
    assert not CompanyProduct.objects.filter(company=second).exists()


def test_the_reconciler_heals_a_change_made_at_codat_that_no_webhook_told(
    sandbox, operations_env, monkeypatch
):
    # given a company whose product was added at Codat behind the portal's back
    from codat.data_types import ALL_DATA_TYPES

    ensure_data_types(ALL_DATA_TYPES)
    lending = lending_product()
    (company,) = make_fleet(sandbox, 1)
    sandbox_client(sandbox).add_product(str(company.codat_id), "lending")
    link_company(sandbox, company)
    queued = []
    monkeypatch.setattr(
        "companies.tasks.reconcile_company_task.apply_async",
        lambda args, queue: queued.append(args[0]),
    )
    # when the reconciler runs
    result = mirror_reconcile()
    company_reconcile(company=company)
    # then the mirror has it, with the connection and data status
    assert result == {"imported": 1, "companies_queued": 1}
    assert queued == [company.pk]
    assert CompanyProduct.objects.get(company=company, product=lending).status == "active"
    assert company.connections.get().status == "Linked"
    assert company.data_type_statuses.exists()
