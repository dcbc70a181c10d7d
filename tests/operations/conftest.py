"""The operations engine is tested on its own here: consent has its own suite (tests/consent/).

The consent gate (`consent.selectors.companies_refused_for_consent`, which operations calls as a
module attribute) is made to allow every company unless a test sets `refuse_consent` to say
otherwise.
"""

import pytest


@pytest.fixture(autouse=True)
def refuse_consent(monkeypatch):
    refused: dict[int, str] = {}

    def gate(*, company_ids, product=None, data_types=None):
        return {pk: reason for pk, reason in refused.items() if pk in set(company_ids)}

    monkeypatch.setattr("consent.selectors.companies_refused_for_consent", gate)
    return refused


@pytest.fixture
def no_celery(monkeypatch):
    """The ids services would hand to Celery, collected here instead (a list per send)."""
    sent: list[list[int]] = []
    monkeypatch.setattr(
        "operations.services.enqueue", lambda ids, countdown=None: sent.append(list(ids))
    )
    return sent
