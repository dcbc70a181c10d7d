"""A book of a bank's size, for benchmarks and for trying the admin at scale (`seed_scale`).

Per 100,000 companies it holds what issue 14 measured with: 120,000 connections, 200,000
company products, 1.2 million data-type statuses, 500,000 pulls, 300,000 operations in jobs of at
most 100,000, 300,000 webhook events and 110,000 consent events. Every table is filled by one
`INSERT ... SELECT` over `generate_series`, so 100,000 companies take a minute or two instead of
the hours that services (or even `bulk_create`) would take; the catalogue (products, their data
types and consent texts) goes through the services as the demo's does, so the rows point at a
real catalogue. PostgreSQL only: the statements use its functions (`gen_random_uuid`, `sha256`).

The rows are fabricated, not observed: the companies exist at no Codat, and nothing here may run
against a database that serves people. The command refuses a database that already has companies
unless told otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from portal.demo import PRODUCTS, STANDARD_PRODUCTS
from products.models import Product
from products.services import product_define

# The demo's custom products are defined at the sandbox; the book has none, so it gives them
# the data types the sandbox's demo world gives them.
CUSTOM_PRODUCT_DATA_TYPES = {
    "invoice-finance": {
        "name": "Invoice Finance",
        "dataTypes": ["invoices", "creditNotes", "customers", "payments"],
        "schedule_kind": "daily",
    },
    "cash-flow-monitoring": {
        "name": "Cash Flow Monitoring",
        "dataTypes": ["banking-accountBalances", "banking-transactions"],
        "schedule_kind": "hourly",
    },
}

# The largest job of the book: an operator's bulk action over a whole book of this size.
JOB_SIZE_LIMIT = 100_000

# Parts of company names; the book's names combine them with the row number.
NAME_FIRST = (
    "Harbour", "Kestrel", "Greystone", "Ironbridge", "Lantern", "Linden", "Redbrick", "Willow",
    "Northgate", "Copper", "Meadow", "Falcon", "Silver", "Oak", "Riverside", "Summit", "Bluebell",
    "Granite", "Maple", "Orchard", "Beacon", "Heron", "Juniper", "Thistle", "Cobalt",
)  # fmt: skip
NAME_SECOND = (
    "Coffee Roasters", "Logistics", "Architects", "Cycles", "Books", "Dental", "Property Services",
    "Bakery", "Joinery", "Electrical", "Florists", "Print Works", "Brewing", "Accountants",
    "Veterinary", "Plumbing", "Studios", "Garden Centre", "Motors", "Textiles",
)  # fmt: skip


@dataclass
class BookFigures:
    companies: int
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)


class NotPostgres(Exception):
    """The book is written with PostgreSQL's functions; another database cannot hold it."""


class BookNotEmpty(Exception):
    """The database already has companies; the book is only added to one when asked."""


def scale_catalogue() -> list[Product]:
    """The demo's five products with their data types and consent texts (via the services)."""
    products = []
    for spec in PRODUCTS:
        source = STANDARD_PRODUCTS.get(spec["identifier"]) or CUSTOM_PRODUCT_DATA_TYPES.get(
            spec["identifier"]
        )
        schedule = {}
        if source.get("schedule_kind") == "daily":
            from datetime import time as time_of_day

            schedule = {"schedule_kind": "daily", "schedule_time": time_of_day(2, 0)}
        elif source.get("schedule_kind") == "hourly":
            schedule = {"schedule_kind": "hourly"}
        products.append(
            product_define(
                identifier=spec["identifier"],
                name=source["name"],
                kind=spec["kind"],
                description=spec["description"],
                data_types=source["dataTypes"],
                optional_data_types=spec.get("optional", ()),
                **schedule,
            )
        )
    return products


def _sql_text_array(values) -> str:
    return "ARRAY[" + ",".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


def _statements(companies: int, first: int) -> list[tuple[str, str]]:
    """(table, SQL) in insertion order. Company k (first <= k < first + companies) drives every
    other row through its id, so the book is the same each time it is built."""
    last = first + companies - 1
    first_names = _sql_text_array(NAME_FIRST)
    second_names = _sql_text_array(NAME_SECOND)
    # The companies of this run only (`c`): the book may be added to an existing one.
    tag = f"scale book #{first}"
    this_book = f"c.description = '{tag}'"
    first_company = f"(SELECT min(id) FROM companies_company WHERE description = '{tag}')"
    data_types = "(SELECT array_agg(identifier ORDER BY identifier) AS ids FROM products_datatype)"
    jobs = max(1, -(-companies // JOB_SIZE_LIMIT))
    return [
        (
            "companies",
            f"""
            INSERT INTO companies_company (codat_id, name, description, tags, redirect,
                codat_created_at, last_sync, codat_deleted_at, observed_at, last_event_at,
                mirrored_at)
            SELECT gen_random_uuid(),
                   ({first_names})[1 + k % {len(NAME_FIRST)}] || ' '
                     || ({second_names})[1 + (k / {len(NAME_FIRST)}) % {len(NAME_SECOND)}]
                     || ' ' || k,
                   '{tag}', '{{}}'::jsonb, 'https://link.codat.io/company/' || k,
                   now() - (k % 1000) * interval '1 day', now() - (k % 97) * interval '1 hour',
                   NULL, now(), now() - (k % 97) * interval '1 hour', now()
            FROM generate_series({first}, {last}) AS k
            """,
        ),
        (
            # Every company one connection; every fifth a second one: 1.2 per company.
            "connections",
            f"""
            INSERT INTO companies_connection (codat_id, company_id, integration_id,
                integration_key, source_id, platform_name, source_type, status, link_url,
                last_sync, codat_created_at, errors, codat_deleted_at, observed_at,
                last_event_at, mirrored_at)
            SELECT gen_random_uuid(), c.id, '', (ARRAY['gbol','qhyg','pqsw','mqjo'])[1 + n % 4],
                   '', (ARRAY['Xero','QuickBooks Online','Sage Business Cloud','Plaid'])[1 + n % 4],
                   (ARRAY['Accounting','Accounting','Accounting','Banking'])[1 + n % 4],
                   (ARRAY['Linked','Linked','Linked','Linked','Linked','Linked','PendingAuth',
                          'Deauthorized','Unlinked','Linked'])[1 + (c.id + n) % 10],
                   'https://link.codat.io/connection/' || c.id || '/' || n,
                   now() - (c.id % 48) * interval '1 hour', now() - (c.id % 900) * interval '1 day',
                   '[]'::jsonb, NULL, now(), NULL, now()
            FROM companies_company c, generate_series(0, 1) AS n
            WHERE {this_book} AND (n = 0 OR c.id % 5 = 0)
            """,
        ),
        (
            # Two products each (of five): 200,000 per 100,000, mostly active.
            "company products",
            f"""
            INSERT INTO products_companyproduct (company_id, product_id, status,
                status_changed_at, created_at)
            SELECT c.id, p.ids[1 + (c.id + n) % cardinality(p.ids)],
                   (ARRAY['active','active','active','active','active','active','active',
                          'pending_add','removed','failed'])[1 + (c.id * 7 + n) % 10],
                   now() - (c.id % 300) * interval '1 hour', now() - (c.id % 300) * interval '1 day'
            FROM companies_company c, generate_series(0, 1) AS n,
                 (SELECT array_agg(id ORDER BY id) AS ids FROM products_product) AS p
            WHERE {this_book}
            """,
        ),
        (
            # Each held assignment's reads per data type of its product (what the stale-reads
            # page and the dashboard's freshness read): due from up to four days back, so the
            # hourly and daily products have stale reads; one in three last failed.
            "product read statuses",
            f"""
            INSERT INTO companies_productreadstatus (assignment_id, product_id, data_type_id,
                last_status, last_read_at, last_successful_read, last_read_issues, due_from,
                observed_at, last_event_at, mirrored_at)
            SELECT cp.id, cp.product_id, pdt.data_type_id,
                   CASE WHEN (cp.id + length(pdt.data_type_id)) % 3 = 0 THEN 'FetchError'
                        ELSE 'Complete' END,
                   now() - (cp.id % 96) * interval '1 hour',
                   now() - (cp.id % 96) * interval '1 hour', '[]'::jsonb,
                   now() - (cp.id % 96) * interval '1 hour', now(), now(), now()
            FROM products_companyproduct cp
            JOIN companies_company c ON c.id = cp.company_id
            JOIN products_productdatatype pdt ON pdt.product_id = cp.product_id
            WHERE {this_book} AND cp.status IN ('pending_add', 'active', 'pending_removal')
            """,
        ),
        (
            # Twelve data types each (of 43): most read, some never, a few in error.
            "data-type statuses",
            f"""
            INSERT INTO companies_datatypestatus (company_id, data_type_id, current_status,
                last_successful_sync, latest_sync_id, latest_successful_sync_id,
                records_last_modified_at, last_read_issues, observed_at, last_event_at,
                mirrored_at)
            SELECT c.id, t.ids[1 + (c.id + 3 * n) % cardinality(t.ids)], s.status,
                   CASE WHEN s.status = '' THEN NULL
                        ELSE now() - ((c.id + n) % 72) * interval '1 hour' END,
                   CASE WHEN s.status = '' THEN NULL ELSE gen_random_uuid() END,
                   CASE WHEN s.status = '' THEN NULL ELSE gen_random_uuid() END,
                   NULL, '[]'::jsonb, now(), NULL, now()
            FROM companies_company c, generate_series(0, 11) AS n, {data_types} AS t,
                 LATERAL (SELECT (ARRAY['Complete','Complete','Complete','Complete','Complete',
                     'Complete','','','FetchError','Queued'])[1 + (c.id * 3 + n) % 10] AS status) s
            WHERE {this_book}
            """,
        ),
        (
            # Five reads each, on the company's first connection.
            "pulls",
            f"""
            INSERT INTO companies_pulloperation (codat_id, company_id, connection_id,
                data_type_id, status, status_description, error_message, requested, completed,
                progress, is_completed, is_errored, observed_at, mirrored_at)
            SELECT gen_random_uuid(), c.id, fc.id,
                   t.ids[1 + (c.id + 3 * n) % cardinality(t.ids)],
                   CASE WHEN (c.id + n) % 17 = 0 THEN 'FetchError' ELSE 'Complete' END, '',
                   CASE WHEN (c.id + n) % 17 = 0 THEN 'The platform did not answer.' ELSE '' END,
                   now() - (n * 24 + c.id % 24) * interval '1 hour',
                   now() - (n * 24 + c.id % 24) * interval '1 hour' + interval '3 minutes',
                   100, true, (c.id + n) % 17 = 0, now(), now()
            FROM companies_company c, generate_series(0, 4) AS n, {data_types} AS t,
                 (SELECT company_id, min(id) AS id FROM companies_connection
                  GROUP BY company_id) AS fc
            WHERE {this_book} AND fc.company_id = c.id
            """,
        ),
        (
            # Three kinds of bulk action, each over every company, in jobs of JOB_SIZE_LIMIT.
            "jobs",
            f"""
            INSERT INTO operations_job (kind, product_id, data_types, description,
                requested_by_id, created_at, cancelled_at)
            SELECT (ARRAY['add_product','refresh_product','remove_product'])[1 + j % 3],
                   (SELECT min(id) FROM products_product), '[]'::jsonb, '{tag} job ' || j, NULL,
                   now() - (3 * {jobs} - j) * interval '1 day', NULL
            FROM generate_series(0, 3 * {jobs} - 1) AS j
            """,
        ),
        (
            "operations",
            f"""
            INSERT INTO operations_operation (kind, company_id, product_id, consumer_id,
                data_types, parameters, state, attempts, transient_failures, next_attempt_at,
                enqueued_at, claimed_at, claim_token, abandoned_claims, last_error,
                last_error_status, last_error_correlation_id, result, dedupe_key,
                idempotency_key, requested_by_id, job_id, created_at, finished_at)
            SELECT jb.kind, c.id, jb.product_id, NULL, '[]'::jsonb, '{{}}'::jsonb, st.state,
                   1, 0, jb.created_at, jb.created_at, NULL, NULL, 0,
                   CASE WHEN st.state = 'failed' THEN 'Codat answered 400: the company has no'
                        || ' connection to read from.' ELSE '' END,
                   CASE WHEN st.state = 'failed' THEN 400 END, '', '{{}}'::jsonb,
                   jb.kind || ':' || c.id || ':' || jb.product_id || '::',
                   gen_random_uuid(), NULL, jb.id,
                   jb.created_at + (c.id % 3600) * interval '1 second',
                   CASE WHEN st.state IN ('pending', 'running') THEN NULL
                        ELSE jb.created_at + (c.id % 3600 + 2) * interval '1 second' END
            FROM companies_company c, generate_series(0, 2) AS n,
                 LATERAL (SELECT * FROM operations_job j WHERE j.description = '{tag} job '
                     || (3 * ((c.id - {first_company}) / {JOB_SIZE_LIMIT}) + n)) AS jb,
                 LATERAL (SELECT (ARRAY['succeeded','succeeded','succeeded','succeeded',
                     'succeeded','succeeded','succeeded','joined','failed','pending'])
                     [1 + (c.id * 13 + n) % 10] AS state) AS st
            WHERE {this_book}
            """,
        ),
        (
            "webhook events",
            f"""
            INSERT INTO webhooks_webhookevent (webhook_id, event_id, event_type, generated_at,
                company_codat_id, company_id, body, headers, signed_at, state, state_reason,
                times_processed, last_error, received_at, processed_at)
            SELECT 'msg_scale_' || c.id || '_' || n, gen_random_uuid()::text, e.event_type,
                   now() - (n * 24 + c.id % 24) * interval '1 hour', c.codat_id, c.id,
                   '{{"eventType": "' || e.event_type || '", "payload": {{}}}}', '{{}}'::jsonb,
                   now() - (n * 24 + c.id % 24) * interval '1 hour',
                   CASE WHEN (c.id + n) % 50 = 0 THEN 'superseded' ELSE 'applied' END, '', 1, '',
                   now() - (n * 24 + c.id % 24) * interval '1 hour' + interval '1 second',
                   now() - (n * 24 + c.id % 24) * interval '1 hour' + interval '2 seconds'
            FROM companies_company c, generate_series(0, 2) AS n,
                 LATERAL (SELECT (ARRAY['read.completed', 'connection.created',
                     'company.product.added', 'connection.updated', 'read.completed'])
                     [1 + (c.id + n) % 5] AS event_type) AS e
            WHERE {this_book}
            """,
        ),
        (
            # A grant of each company's first product through its consent link; a tenth also
            # granted its second product: 1.1 events per company.
            "consent events",
            f"""
            INSERT INTO consent_consentevent (receipt_id, occurred_at, company_id, product_id,
                action, data_types, text_id, text_hash, channel, actor_id, actor_name,
                request_id, token_hash, client)
            SELECT gen_random_uuid(), now() - (c.id % 400) * interval '1 hour', c.id,
                   cp.product_id, 'grant', COALESCE(req.types, '[]'::jsonb), txt.id,
                   txt.content_hash, 'link', NULL, '', NULL,
                   encode(sha256(('scale' || c.id || '/' || cp.n)::bytea), 'hex'), '{{}}'::jsonb
            FROM companies_company c,
                 (SELECT company_id, product_id,
                         row_number() OVER (PARTITION BY company_id ORDER BY id) - 1 AS n
                  FROM products_companyproduct) AS cp,
                 LATERAL (SELECT id, content_hash FROM consent_consenttext
                     WHERE product_id = cp.product_id ORDER BY version DESC LIMIT 1) AS txt,
                 LATERAL (SELECT jsonb_agg(data_type_id ORDER BY data_type_id) AS types
                     FROM products_productdatatype WHERE product_id = cp.product_id) AS req
            WHERE {this_book} AND cp.company_id = c.id
              AND (cp.n = 0 OR (cp.n = 1 AND c.id % 10 = 0))
            """,
        ),
    ]


def scale_book_build(*, companies: int, allow_non_empty: bool = False, log=print) -> BookFigures:
    """Write a book of `companies` companies (and the rows they imply) in one transaction."""
    from companies.models import Company
    from consent.services import current_consent_refold

    if connection.vendor != "postgresql":
        raise NotPostgres(
            f"the scale book needs PostgreSQL; this database is {connection.vendor}"
            " (set DATABASE_URL to a postgres:// URL)"
        )
    if companies < 1:
        raise ValueError("--companies must be at least 1")
    if Company.objects.exists() and not allow_non_empty:
        raise BookNotEmpty(
            f"the database already has {Company.objects.count():,} companies; pass"
            " --allow-non-empty to add the book to them"
        )
    started = time.monotonic()
    figures = BookFigures(companies=companies)
    with transaction.atomic():
        scale_catalogue()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(max(id), 0) + 1 FROM companies_company")
            first = cursor.fetchone()[0]
            for table, sql in _statements(companies, first):
                step = time.monotonic()
                cursor.execute(sql)
                figures.rows[table] = cursor.rowcount
                log(f"  {table}: {cursor.rowcount:,} rows in {time.monotonic() - step:.1f} s")
        # The events above were written around consent's services: store what they add up to,
        # as the services would have (the same fold, from the log).
        step = time.monotonic()
        figures.rows["current consent"] = current_consent_refold(
            company_ids=range(first, first + companies)
        )
        log(
            f"  current consent: {figures.rows['current consent']:,} rows"
            f" in {time.monotonic() - step:.1f} s"
        )
    with connection.cursor() as cursor:
        # Fresh statistics and visibility maps (index-only scans), as autovacuum would leave
        # them, so the first plans over the book are the ones it will keep. VACUUM cannot run
        # in a transaction (a test's): statistics alone then.
        cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
    figures.seconds = time.monotonic() - started
    return figures
