from django.contrib import admin
from django.db.models import Count, Q

from consent.services import consent_text_publish, consent_texts_publish
from core.admin_mixins import ReadOnlyMirrorAdmin
from products.models import HELD_STATUSES, CompanyProduct, DataType, Product, ProductDataType


@admin.register(DataType)
class DataTypeAdmin(admin.ModelAdmin):
    """Codat's fixed catalogue; only the names and descriptions shown to SMBs are edited here."""

    list_display = ("identifier", "name", "category", "description")
    list_filter = ("category",)
    search_fields = ("identifier", "name", "description")
    readonly_fields = ("identifier", "category")
    fields = ("identifier", "category", "name", "description")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The name and description are shown in the consent text of every product reading it.
        consent_texts_publish(products=form.instance.products.all(), user=request.user)


class ProductDataTypeInline(admin.TabularInline):
    model = ProductDataType
    extra = 0
    autocomplete_fields = ("data_type",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "identifier", "kind", "schedule", "data_type_count", "company_count")
    list_filter = ("kind", "schedule_kind")
    search_fields = ("name", "identifier")
    fields = ("identifier", "name", "kind", "description", "schedule_kind", "schedule_time")
    inlines = (ProductDataTypeInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _data_type_count=Count("product_data_types", distinct=True),
                _company_count=Count(
                    "assignments", filter=Q(assignments__status__in=HELD_STATUSES), distinct=True
                ),
            )
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the data type inlines are saved: the text shows the name and the data types.
        consent_text_publish(product=form.instance, user=request.user)

    @admin.display(description="schedule", ordering="schedule_kind")
    def schedule(self, product):
        return product.schedule_display

    @admin.display(description="data types", ordering="_data_type_count")
    def data_type_count(self, product):
        return product._data_type_count

    @admin.display(description="companies", ordering="_company_count")
    def company_count(self, product):
        return product._company_count


@admin.register(CompanyProduct)
class CompanyProductAdmin(ReadOnlyMirrorAdmin):
    list_display = ("company", "product", "schedule", "status", "status_changed_at")
    list_filter = ("status", "product")
    list_select_related = ("company", "product")
    search_fields = ("company__name", "product__identifier")

    @admin.display(description="schedule")
    def schedule(self, assignment):
        # When each data type's next read is due, and which are stale: Operations > Stale reads.
        return assignment.product.schedule_display
