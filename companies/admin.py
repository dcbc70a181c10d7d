from django.contrib import admin
from django.db.models import Count, Exists, OuterRef, Q

from companies.models import Company, Connection, ConnectionStatus, DataTypeStatus, PullOperation
from core.admin_mixins import ReadOnlyInline, ReadOnlyMirrorAdmin
from operations.admin import CompanyOperationsAdminMixin, OperationTimelineInline
from products.models import HELD_STATUSES, CompanyProduct, Product


class ConnectionInline(ReadOnlyInline):
    model = Connection
    fields = ("platform_name", "integration_key", "source_type", "status", "last_sync")
    readonly_fields = fields


class CompanyProductInline(ReadOnlyInline):
    model = CompanyProduct
    fields = ("product", "status", "status_changed_at")
    readonly_fields = fields
    verbose_name_plural = "products"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")


class DataTypeStatusInline(ReadOnlyInline):
    model = DataTypeStatus
    fields = (
        "data_type",
        "current_status",
        "last_successful_sync",
        "records_last_modified_at",
        "latest_sync_id",
    )
    readonly_fields = fields
    show_change_link = False


class RecentPullOperationInline(ReadOnlyInline):
    model = PullOperation
    fields = ("data_type", "status", "requested", "completed", "progress")
    readonly_fields = fields
    verbose_name_plural = "recent pull operations"
    max_num = 20

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-requested")


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


@admin.register(Company)
class CompanyAdmin(CompanyOperationsAdminMixin, ReadOnlyMirrorAdmin):
    list_display = (
        "name",
        "codat_id",
        "connection_count",
        "linked_count",
        "product_count",
        "last_sync",
    )
    list_filter = (
        ("connections__status", admin.ChoicesFieldListFilter),
        HeldProductListFilter,
        ("data_type_statuses__current_status", admin.ChoicesFieldListFilter),
    )
    search_fields = ("name", "=codat_id", "description", "connections__platform_name")
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
    )
    inlines = (
        ConnectionInline,
        CompanyProductInline,
        DataTypeStatusInline,
        RecentPullOperationInline,
        OperationTimelineInline,
    )
    ordering = ("name", "id")

    def get_queryset(self, request):
        # Counts come from one aggregate query, so the page costs the same for 20 or 20,000 rows.
        return (
            super()
            .get_queryset(request)
            .annotate(
                _connection_count=Count("connections", distinct=True),
                _linked_count=Count(
                    "connections",
                    filter=Q(connections__status=ConnectionStatus.LINKED),
                    distinct=True,
                ),
                _product_count=Count(
                    "product_assignments",
                    filter=Q(product_assignments__status__in=HELD_STATUSES),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="connections", ordering="_connection_count")
    def connection_count(self, company):
        return company._connection_count

    @admin.display(description="linked", ordering="_linked_count")
    def linked_count(self, company):
        return company._linked_count

    @admin.display(description="products", ordering="_product_count")
    def product_count(self, company):
        return company._product_count


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "platform_name",
        "company",
        "integration_key",
        "source_type",
        "status",
        "last_sync",
    )
    list_filter = ("status", "source_type", "platform_name")
    list_select_related = ("company",)
    search_fields = ("company__name", "=codat_id", "platform_name", "=integration_key")


@admin.register(DataTypeStatus)
class DataTypeStatusAdmin(ReadOnlyMirrorAdmin):
    list_display = (
        "company",
        "data_type",
        "current_status",
        "last_successful_sync",
        "records_last_modified_at",
    )
    list_filter = ("current_status", "data_type__category", "data_type")
    list_select_related = ("company", "data_type")
    search_fields = ("company__name", "data_type__identifier")


@admin.register(PullOperation)
class PullOperationAdmin(ReadOnlyMirrorAdmin):
    list_display = ("data_type", "company", "status", "requested", "completed", "progress")
    list_filter = ("status", "is_errored", "data_type")
    list_select_related = ("company", "data_type")
    search_fields = ("company__name", "=codat_id")
    date_hierarchy = "requested"
