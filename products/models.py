from django.db import models
from django.db.models import Q

from codat.data_types import ALL_DATA_TYPES


class DataTypeCategory(models.TextChoices):
    ACCOUNTING = "accounting", "Accounting"
    BANKING = "banking", "Banking"
    COMMERCE = "commerce", "Commerce"


class DataType(models.Model):
    """One of Codat's 43 data types. The catalogue is seeded by a migration; only texts change."""

    identifier = models.CharField(primary_key=True, max_length=40)
    name = models.CharField(max_length=80)
    category = models.CharField(max_length=16, choices=DataTypeCategory.choices)
    # Shown to SMB owners on consent pages: plain words, no jargon.
    description = models.TextField()

    class Meta:
        ordering = ("category", "identifier")
        constraints = (
            models.CheckConstraint(
                condition=Q(identifier__in=ALL_DATA_TYPES), name="data_type_identifier_known"
            ),
            models.CheckConstraint(
                condition=Q(category__in=DataTypeCategory.values), name="data_type_category_valid"
            ),
            models.CheckConstraint(condition=~Q(description=""), name="data_type_has_description"),
        )

    def __str__(self):
        return self.identifier


class ProductKind(models.TextChoices):
    STANDARD = "standard", "Standard (defined by Codat)"
    CUSTOM = "custom", "Custom (defined for this client)"


class ScheduleKind(models.TextChoices):
    NONE = "none", "No schedule"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"


class Product(models.Model):
    """A use case: a named set of data types read on a schedule (Codat's "product")."""

    identifier = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ProductKind.choices)
    # The purpose of the use case in plain language; the consent pages start from it.
    description = models.TextField(blank=True)
    data_types = models.ManyToManyField(
        DataType, through="ProductDataType", related_name="products"
    )
    schedule_kind = models.CharField(
        max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.NONE
    )
    # UTC time of day of the daily read; only for daily schedules.
    schedule_time = models.TimeField(null=True, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = (
            models.CheckConstraint(
                condition=Q(kind__in=ProductKind.values), name="product_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(schedule_kind__in=ScheduleKind.values), name="product_schedule_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(schedule_kind=ScheduleKind.DAILY, schedule_time__isnull=False)
                    | (~Q(schedule_kind=ScheduleKind.DAILY) & Q(schedule_time__isnull=True))
                ),
                name="product_daily_schedule_has_time",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="product_has_name"),
        )

    def __str__(self):
        return self.name

    @property
    def schedule_display(self) -> str:
        if self.schedule_kind == ScheduleKind.DAILY:
            return f"daily at {self.schedule_time:%H:%M} UTC"
        if self.schedule_kind == ScheduleKind.HOURLY:
            return "hourly"
        return "no schedule"


class ProductDataType(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="product_data_types"
    )
    data_type = models.ForeignKey(DataType, on_delete=models.PROTECT, related_name="+")
    # Optional data types may be left out by the SMB on the consent page.
    is_optional = models.BooleanField(default=False)

    class Meta:
        ordering = ("product", "data_type")
        constraints = (
            models.UniqueConstraint(
                fields=("product", "data_type"), name="product_data_type_unique"
            ),
        )

    def __str__(self):
        return f"{self.product.identifier}: {self.data_type_id}"


class CompanyProductStatus(models.TextChoices):
    PENDING_ADD = "pending_add", "Being added"
    ACTIVE = "active", "Active"
    PENDING_REMOVAL = "pending_removal", "Being removed"
    REMOVED = "removed", "Removed"
    FAILED = "failed", "Failed"


# Assignments a company holds at Codat or is moving to or from: the admin counts and filters on
# these. A removed one is history; a failed one is an add Codat refused (a removal that fails
# goes back to active, so `failed` never means the company still has the product).
HELD_STATUSES = (
    CompanyProductStatus.PENDING_ADD,
    CompanyProductStatus.ACTIVE,
    CompanyProductStatus.PENDING_REMOVAL,
)


class CompanyProduct(models.Model):
    """A product assigned to a company: the desired state the workers drive Codat towards."""

    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="product_assignments"
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(
        max_length=16,
        choices=CompanyProductStatus.choices,
        default=CompanyProductStatus.PENDING_ADD,
    )
    status_changed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("company", "product")
        verbose_name = "company product"
        constraints = (
            models.UniqueConstraint(fields=("company", "product"), name="company_product_unique"),
            models.CheckConstraint(
                condition=Q(status__in=CompanyProductStatus.values),
                name="company_product_status_valid",
            ),
        )

    def __str__(self):
        return f"{self.company} · {self.product}"
