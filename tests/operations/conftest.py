"""The operations engine is tested on its own here: consent has its own suite (tests/consent/).

The consent gate (consent.selectors.companies_refused_for_consent) is made to allow every
company unless a test sets `refuse_consent` to say otherwise; so is its set-based twin, the SQL
of current consent that the confirmation page's summary reads (consent.selectors.
current_consent_sql): every company not refused has active consent to every data type of every
product, a refused one has none at all (the summary then gives consent's own reason, "<product>:
no consent recorded", whatever reason the test gave).
"""

import pytest


@pytest.fixture(autouse=True)
def refuse_consent(monkeypatch):
    refused: dict[int, str] = {}

    def gate(*, company_ids, product=None, data_types=None):
        return {pk: reason for pk, reason in refused.items() if pk in set(company_ids)}

    def current_consent_sql(*, product=None, now=None):
        sql = (
            "SELECT c.id AS company_id, p.id AS product_id, 'active' AS state,"
            " (SELECT jsonb_agg(identifier) FROM products_datatype) AS data_types"
            " FROM companies_company c CROSS JOIN products_product p"
            " WHERE NOT (c.id = ANY(%(refused_companies)s))"
        )
        params = {"refused_companies": list(refused)}
        if product is not None:
            sql += " AND p.id = %(consent_product)s"
            params["consent_product"] = product.pk
        return sql, params

    monkeypatch.setattr("consent.selectors.companies_refused_for_consent", gate)
    monkeypatch.setattr("consent.selectors.current_consent_sql", current_consent_sql)
    return refused


@pytest.fixture
def no_celery(monkeypatch):
    """The ids services would hand to Celery, collected here instead (a list per send)."""
    sent: list[list[int]] = []
    monkeypatch.setattr(
        "operations.queue.enqueue", lambda ids, countdown=None: sent.append(list(ids))
    )
    return sent
