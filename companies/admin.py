import uuid

from django.conf import settings
from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from companies import selectors
from companies.models import (
    CONNECTION_STATUS_HELP,
    DATASET_STATUS_HELP,
    Company,
    Connection,
    ConnectionStatus,
    DatasetStatus,
    DataTypeStatus,
    PullOperation,
    StatusHelp,
)
from consent.admin import RECORD as RECORD_CONSENT
from consent.admin import SEND as SEND_CONSENT_REQUESTS
from core.admin_mixins import (
    FoldedInline,
    ReadOnlyMirrorAdmin,
    RelatedChoicesListFilter,
    count_of_rows,
)
from core.roles import can_run_operations
from operations.admin import CompanyOperationsAdminMixin
from operations.kinds import SPECS, Consent
from operations.models import OperationKind
from products.models import HELD_STATUSES, CompanyProduct, Product, ProductKind
from syncsettings.models import SyncModeKind
from syncsettings.selectors import company_sync_mode, with_sync_mode

# Codat leaves a data type it never read without a status; the mirror keeps it empty.
NEVER_READ = StatusHelp(
    "Codat has not read this data type for the company yet.",
    "Nothing, unless a product needs the data: then refresh it.",
)


def _status_with_meaning(label: str, meaning: StatusHelp) -> str:
    # The meaning rides on the title attribute: a tooltip in lists, without widening them.
    return format_html('<span title="{}">{}</span>', str(meaning), label)


def connection_status_cell(status: str) -> str:
    return _status_with_meaning(ConnectionStatus(status).label, CONNECTION_STATUS_HELP[status])


def dataset_status_meaning(status: str) -> StatusHelp:
    return DATASET_STATUS_HELP[status] if status else NEVER_READ


def dataset_status_cell(status: str) -> str:
    label = DatasetStatus(status).label if status else "Never read"
    return _status_with_meaning(label, dataset_status_meaning(status))


class StatusDisplays:
    """Codat's statuses as labels with their meaning, for the mirrors' lists and inlines."""

    @admin.display(description="status", ordering="status")
    def connection_status(self, connection):
        return connection_status_cell(connection.status)

    @admin.display(description="current status", ordering="current_status")
    def data_type_status(self, data_type_status):
        return dataset_status_cell(data_type_status.current_status)

    @admin.display(description="status", ordering="status")
    def pull_status(self, pull_operation):
        return dataset_status_cell(pull_operation.status)

    # On the change pages, after the mirror's fields (the status itself shows its label there).
    @admin.display(description="what the status means")
    def connection_status_meaning(self, connection):
        return str(CONNECTION_STATUS_HELP[connection.status])

    @admin.display(description="what the status means")
    def data_type_status_meaning(self, data_type_status):
        return str(dataset_status_meaning(data_type_status.current_status))

    @admin.display(description="what the status means")
    def pull_status_meaning(self, pull_operation):
        return str(dataset_status_meaning(pull_operation.status))


def company_rows_url(url_name: str, company, **filters) -> str:
    """A list page of the admin, filtered to one company's rows (and `filters`)."""
    return reverse(url_name) + "?" + urlencode({"company__id__exact": company.pk, **filters})


# The data-type status list's filters for selectors.NEVER_SYNCED.
NEVER_SYNCED_FILTERS = {"current_status__exact": "", "last_successful_sync__isnull": "True"}


class RecentPullOperationInline(StatusDisplays, FoldedInline):
    model = PullOperation
    fields = ("data_type", "pull_status", "requested", "completed", "progress")
    readonly_fields = fields
    verbose_name_plural = "recent pull operations"
    # Folded: the header, the data types and the timeline say more; the newest reads are a
    # click away.
    classes = ("collapse",)
    row_limit = 20
    hidden_rows_text = "Older pull operations, not shown: %(count)s."

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("data_type").order_by("-requested")

    def see_all_url(self, obj):
        return company_rows_url("admin:companies_pulloperation_changelist", obj)


class HeldProductListFilter(admin.SimpleListFilter):
    """Companies that hold the product, or have it being added or removed; not those where it
    was removed or its add failed (see products.models.HELD_STATUSES)."""

    title = "product"
    parameter_name = "product"

    def lookups(self, request, model_admin):
        return Product.objects.order_by("name").values_list("pk", "name")

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        # EXISTS rather than a join: the list's counts stay per company, with no duplicate rows.
        return queryset.filter(
            Exists(
                CompanyProduct.objects.filter(
                    company=OuterRef("pk"), product_id=self.value(), status__in=HELD_STATUSES
                )
            )
        )


class SyncModeListFilter(admin.SimpleListFilter):
    """Companies by how Codat reads them (syncsettings.selectors.with_sync_mode)."""

    title = "sync mode"
    parameter_name = "sync_mode"

    def lookups(self, request, model_admin):
        return SyncModeKind.choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in SyncModeKind.values:
            return queryset.none()
        return queryset.filter(sync_mode=self.value())


class ConnectionStatusListFilter(RelatedChoicesListFilter):
    title = "connection status"
    parameter_name = "connection_status"
    related_model = Connection
    parent_field = "company"
    field = "status"
    # Companies with no connection at all (the dashboard counts them apart).
    NONE = "none"

    def lookups(self, request, model_admin):
        return [*super().lookups(request, model_admin), (self.NONE, "No connection")]

    def queryset(self, request, queryset):
        if self.value() == self.NONE:
            return queryset.filter(~Exists(Connection.objects.filter(company=OuterRef("pk"))))
        return super().queryset(request, queryset)


class DataTypeStatusListFilter(RelatedChoicesListFilter):
    title = "data-type status"
    parameter_name = "data_type_status"
    related_model = DataTypeStatus
    parent_field = "company"
    field = "current_status"


@admin.register(Company)
class CompanyAdmin(CompanyOperationsAdminMixin, ReadOnlyMirrorAdmin):
    list_display = (
        "name",
        "codat_id",
        "connection_count",
        "linked_count",
        "product_count",
        "sync_mode",
        "last_sync",
    )
    list_filter = (
        ConnectionStatusListFilter,
        HeldProductListFilter,
        DataTypeStatusListFilter,
        SyncModeListFilter,
    )
    # What the search box looks in is get_search_results' (name, description, Codat id,
    # platform); the list here only shows the box.
    search_fields = ("name",)
    readonly_fields = (
        "codat_id",
        "name",
        "description",
        "tags",
        "redirect",
        "codat_created_at",
        "last_sync",
        "codat_deleted_at",
        "observed_at",
        "last_event_at",
        "mirrored_at",
        "consent_matrix",
    )
    # The rest of the company page (its header, data types by product and state, the timeline)
    # is rendered by admin/companies/company/change_form.html from `company_page_context`.
    inlines = (RecentPullOperationInline,)
    ordering = ("name", "id")

    def get_queryset(self, request):
        # Counts are subqueries, computed for the rows of the page only (core.admin_mixins); so
        # is the sync mode (EXISTS subqueries, no query per row).
        return with_sync_mode(
            super()
            .get_queryset(request)
            .annotate(
                _connection_count=count_of_rows(Connection.objects, parent_field="company"),
                _linked_count=count_of_rows(
                    Connection.objects.filter(status=ConnectionStatus.LINKED),
                    parent_field="company",
                ),
                _product_count=count_of_rows(
                    CompanyProduct.objects.filter(status__in=HELD_STATUSES),
                    parent_field="company",
                ),
            )
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Only for a company that exists: a junk id never gets here (the admin answers it first).
        if obj is not None:
            context.update(company_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_search_results(self, request, queryset, search_term):
        """A Codat id finds its company through the unique index; other text is looked for in
        the name, the description and the connections' platform names.

        Written here rather than left to `search_fields`, whose exact match on the id casts
        every company's UUID to text, and whose search through the connections would make the
        admin de-duplicate the whole list: one scan of the companies and one of the
        connections (a hashed subplan) instead, whatever the number of companies.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(codat_id=uuid.UUID(term)), False
        except ValueError:
            pass
        on_platform = Connection.objects.filter(platform_name__icontains=term)
        return (
            queryset.filter(
                Q(name__icontains=term)
                | Q(description__icontains=term)
                | Q(pk__in=on_platform.values("company_id"))
            ),
            False,
        )

    @admin.display(description="consent")
    def consent_matrix(self, company):
        url = reverse("admin:consent_companyconsent_change", args=[company.pk])
        return format_html('<a href="{}">Consent matrix: products and data types</a>', url)

    # The counts are not sortable: sorting 100,000 companies by a count counts for every one
    # of them before the first page (1-2 s at a bank's scale), where the page counts only its
    # own rows.
    @admin.display(description="connections")
    def connection_count(self, company):
        return company._connection_count

    @admin.display(description="linked")
    def linked_count(self, company):
        return company._linked_count

    @admin.display(description="products")
    def product_count(self, company):
        return company._product_count

    @admin.display(description="sync mode")
    def sync_mode(self, company):
        label = SyncModeKind(company.sync_mode).label
        if company.sync_mode == SyncModeKind.DUAL_SYNC_RISK:
            return format_html('<span class="badge badge-warn">{}</span>', label)
        return label


# -- the company page --------------------------------------------------------------------------

# What the header offers per product, in its order: each applies when the kind's spec would plan
# a row for the assignment (the rules of the confirmation page it leads to).
PRODUCT_ACTIONS = (
    (OperationKind.REFRESH_PRODUCT, "Refresh…"),
    (OperationKind.REMOVE_PRODUCT, "Remove…"),
)


# The full lists behind the timeline, each filtered to the company.
TIMELINE_LISTS = (
    ("All operations", "admin:operations_operation_changelist"),
    ("All webhook events", "admin:webhooks_webhookevent_changelist"),
    ("All consent evidence", "admin:consent_consentevent_changelist"),
)


def product_actions(assignment, *, can_run: bool, consent_covers: bool) -> list[dict]:
    """The operations the header offers for one of the company's products: each a button that
    opens the list's confirmation page for this company alone, as the bulk actions do. One the
    plan would leave out (the assignment's state, the kind's refusal, consent it needs and the
    company lacks) is not offered: the header offers "Ask for consent" instead."""
    if not can_run:
        return []
    offered = []
    for kind, label in PRODUCT_ACTIONS:
        spec = SPECS[kind]
        if spec.assignment is not None and spec.assignment.skip(assignment.status):
            continue
        if spec.refuse is not None and spec.refuse(assignment.product, ()):
            continue
        if spec.consent is not Consent.NONE and not consent_covers:
            continue
        offered.append({"kind": kind, "label": label, "title": spec.kind.label})
    return offered


# The refreshes of client-level sync settings, offered to a company Codat reads at client level
# (the "refresh by mode"; a product-level company refreshes each custom product).
CLIENT_LEVEL_ACTIONS = (
    (OperationKind.REFRESH_ALL_DATA, "Refresh all data…"),
    (OperationKind.REFRESH_DATA_TYPE, "Refresh one data type…"),
)
CODAT_PRODUCTS_DOCS = "https://docs.codat.io/"


def client_level_actions(mode, *, can_run: bool) -> list[dict]:
    """The client-level refreshes, for a company whose mode they fit (the planner leaves the
    others out with the reason: syncsettings.guard)."""
    if not can_run or mode.mode != SyncModeKind.CLIENT_LEVEL:
        return []
    return [
        {"kind": kind, "label": label, "title": SPECS[kind].kind.label}
        for kind, label in CLIENT_LEVEL_ACTIONS
    ]


def company_page_context(request, company) -> dict:
    """What the company page shows beyond the mirror's fields; a fixed number of queries
    whatever the company's history (tests/companies/test_company_page.py counts them)."""
    now = timezone.now()
    user = request.user
    can_run = can_run_operations(user)
    can_send = user.has_perm(SEND_CONSENT_REQUESTS)
    summary = selectors.company_summary(company=company, now=now)
    by_product, other = selectors.company_data_types(company=company, now=now)
    sync_mode = company_sync_mode(company=company)
    return {
        "title": company.name,
        "subtitle": None,
        "summary": summary,
        "product_rows": [
            {
                "summary": item,
                "actions": product_actions(
                    item.assignment, can_run=can_run, consent_covers=item.coverage.covered
                ),
            }
            for item in summary.products
        ],
        "data_types_by_product": by_product,
        "other_data_types": other,
        "never_synced_url": company_rows_url(
            "admin:companies_datatypestatus_changelist", company, **NEVER_SYNCED_FILTERS
        ),
        "timeline": selectors.company_timeline(company=company),
        "timeline_lists": [
            (label, company_rows_url(url_name, company)) for label, url_name in TIMELINE_LISTS
        ],
        "connections_url": company_rows_url("admin:companies_connection_changelist", company),
        "confirm_operation_url": reverse("admin:companies_company_confirm_operation"),
        "consent_matrix_url": reverse("admin:consent_companyconsent_change", args=[company.pk]),
        "can_add_product": can_run and can_send,
        "can_send_consent": can_send,
        "can_record_consent": user.has_perm(RECORD_CONSENT),
        "grace_minutes": settings.CODAT_RATE_LIMIT_FRESHNESS_GRACE_MINUTES,
        "sync_mode": sync_mode,
        "client_level_actions": client_level_actions(sync_mode, can_run=can_run),
        "sync_settings_url": reverse("admin:syncsettings_clientsyncsettings_changelist"),
        "standard_kind": ProductKind.STANDARD,
        "codat_products_docs": CODAT_PRODUCTS_DOCS,
    }


@admin.register(Connection)
class ConnectionAdmin(StatusDisplays, ReadOnlyMirrorAdmin):
    list_display = (
        "platform_name",
        "company",
        "integration_key",
        "source_type",
        "connection_status",
        "last_sync",
    )
    list_filter = ("status", "source_type", "platform_name")
    readonly_fields = ("connection_status_meaning",)
    list_select_related = ("company",)
    search_fields = ("company__name", "=codat_id", "platform_name", "=integration_key")


@admin.register(DataTypeStatus)
class DataTypeStatusAdmin(StatusDisplays, ReadOnlyMirrorAdmin):
    list_display = (
        "company",
        "data_type",
        "data_type_status",
        "last_successful_sync",
        "records_last_modified_at",
    )
    list_filter = ("current_status", "data_type__category", "data_type")
    readonly_fields = ("data_type_status_meaning",)
    list_select_related = ("company", "data_type")
    search_fields = ("company__name", "data_type__identifier")


@admin.register(PullOperation)
class PullOperationAdmin(StatusDisplays, ReadOnlyMirrorAdmin):
    list_display = ("data_type", "company", "pull_status", "requested", "completed", "progress")
    list_filter = ("status", "is_errored", "data_type")
    readonly_fields = ("pull_status_meaning",)
    list_select_related = ("company", "data_type")
    search_fields = ("company__name", "=codat_id")
    date_hierarchy = "requested"
