"""The API's read queries: lists with a fixed number of queries whatever their size.

Each list prefetches what its rows show, so a page costs the same queries at 20 rows as at
2,000 (tests/api/test_query_counts.py). Domain questions stay with their apps (consent state is
consent.selectors', job progress operations.selectors'); this module only shapes querysets.
"""

from django.db.models import Exists, OuterRef, Prefetch

from companies.models import Company, Connection, DataTypeStatus
from consent.effects import awaiting_adds
from consent.models import ConsentEvent, ConsentRequest
from operations.models import Job, Operation
from products.models import CompanyProduct, Product, ProductDataType
from webhooks.models import WebhookEvent

NEVER_SYNCED = "never_synced"


def company_list(
    *,
    connection_status: str = "",
    product: Product | None = None,
    product_status: str = "",
    data_type: str = "",
    data_type_status: str = "",
):
    """Companies, filtered: each filter is an EXISTS on the related rows, so no duplicates."""
    companies = Company.objects.all()
    if connection_status:
        companies = companies.filter(
            Exists(
                Connection.objects.filter(
                    company=OuterRef("pk"), status=connection_status, codat_deleted_at__isnull=True
                )
            )
        )
    if product is not None or product_status:
        assignments = CompanyProduct.objects.filter(company=OuterRef("pk"))
        if product is not None:
            assignments = assignments.filter(product=product)
        if product_status:
            assignments = assignments.filter(status=product_status)
        companies = companies.filter(Exists(assignments))
    if data_type or data_type_status:
        statuses = DataTypeStatus.objects.filter(company=OuterRef("pk"))
        if data_type:
            statuses = statuses.filter(data_type_id=data_type)
        if data_type_status:
            statuses = statuses.filter(
                current_status="" if data_type_status == NEVER_SYNCED else data_type_status
            )
        companies = companies.filter(Exists(statuses))
    return companies.prefetch_related(
        Prefetch(
            "connections",
            queryset=Connection.objects.filter(codat_deleted_at__isnull=True).order_by("id"),
        ),
        Prefetch(
            "product_assignments",
            queryset=CompanyProduct.objects.select_related("product").order_by("product_id"),
        ),
    )


def company_detail(*, company: Company):
    """What the detail shows beyond the company row, each part one query."""
    return {
        "connections": list(company.connections.filter(codat_deleted_at__isnull=True)),
        "products": list(
            CompanyProduct.objects.filter(company=company)
            .select_related("product")
            .order_by("product_id")
        ),
        "data_type_statuses": list(company.data_type_statuses.order_by("data_type_id")),
        "awaiting_consent": list(
            Product.objects.filter(
                Exists(awaiting_adds(company=company, product=OuterRef("pk")))
            ).order_by("identifier")
        ),
    }


def company_get(*, codat_id: str) -> Company | None:
    return Company.objects.filter(codat_id=codat_id).first()


def consent_event_list(*, company: Company):
    return ConsentEvent.objects.filter(company=company).select_related("product")


def consent_request_list(*, company: Company):
    return ConsentRequest.objects.filter(company=company).prefetch_related("products")


def operation_list(
    *, company: Company | None = None, state: str = "", kind: str = "", job: Job | None = None
):
    operations = Operation.objects.select_related("company", "product", "requested_by")
    if company is not None:
        operations = operations.filter(company=company)
    if state:
        operations = operations.filter(state=state)
    if kind:
        operations = operations.filter(kind=kind)
    if job is not None:
        operations = operations.filter(job=job)
    return operations


def job_list():
    return Job.objects.select_related("product", "requested_by")


def webhook_event_list(*, event_type: str = "", state: str = "", company: Company | None = None):
    events = WebhookEvent.objects.select_related("company").defer("body", "headers")
    if event_type:
        events = events.filter(event_type=event_type)
    if state:
        events = events.filter(state=state)
    if company is not None:
        events = events.filter(company=company)
    return events


def product_list():
    return Product.objects.prefetch_related(
        Prefetch(
            "product_data_types",
            queryset=ProductDataType.objects.order_by("data_type_id"),
        )
    )
