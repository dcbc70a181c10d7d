"""Consent is consent's own suite (tests/consent/): here every company's consent covers every
product unless a test puts it in `refuse_consent`, as in tests/operations/conftest.py, or is
marked `real_consent` (a run driven by the worker, where only recorded consent counts).

`migration_worker` is the operations worker with step 2's wait shortened to a few seconds
(SYNC_MIGRATION_WAIT_SECONDS): the check that no client-level read still runs is kept."""

import os

import pytest

from tests.plugins.celery_worker import REPO, CeleryWorker
from tests.plugins.database import database_url_for_worker

WAIT_SECONDS = 3


@pytest.fixture(autouse=True)
def refuse_consent(request, monkeypatch):
    refused: dict[int, str] = {}
    if request.node.get_closest_marker("real_consent"):
        return refused  # the test records consent itself (its worker runs the real gate)

    def gate(*, company_ids, product=None, data_types=None):
        return {pk: reason for pk, reason in refused.items() if pk in set(company_ids)}

    monkeypatch.setattr("consent.selectors.companies_refused_for_consent", gate)
    return refused


@pytest.fixture
def migration_worker(operations_env, django_db_setup, celery_app_on_redis, settings):
    settings.SYNC_MIGRATION_WAIT_SECONDS = WAIT_SECONDS
    worker = CeleryWorker(
        app=celery_app_on_redis,
        env={
            **operations_env,
            "DATABASE_URL": database_url_for_worker(),
            "SYNC_MIGRATION_WAIT_SECONDS": str(WAIT_SECONDS),
        },
        concurrency=int(os.environ.get("OPERATIONS_TEST_CONCURRENCY", "4")),
        log_path=REPO / "var" / "test-migration-worker.log",
        name="migration",
    )
    worker.start()
    yield worker
    worker.stop()
