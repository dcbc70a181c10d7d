"""Mirrors of Codat state. They change only through services in companies/services.py.

Each mirror row keeps `observed_at`: when the newest fact applied to it was true at Codat (a
webhook event's generatedDate, or the moment an API answer arrived). An older fact is not
applied over it; `companies.services` holds that rule, in one place.
"""

from typing import NamedTuple

from django.db import models
from django.db.models import Q

from codat.data_types import CONNECTION_STATUSES, DATASET_STATUSES, SOURCE_TYPES


class Company(models.Model):
    """One of the enterprise's SMB customers, as Codat knows it."""

    codat_id = models.UUIDField("Codat id", unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    # Codat allows at most 10 tags: key 1-27 characters, value up to 100 characters.
    tags = models.JSONField(default=dict, blank=True)
    # The Hosted Link URL Codat gives every company.
    redirect = models.URLField("Hosted Link URL", max_length=500)
    codat_created_at = models.DateTimeField("created at Codat", null=True, blank=True)
    last_sync = models.DateTimeField(null=True, blank=True)
    # Kept, not deleted, when Codat deletes the company: other records (consent evidence) point
    # at it, and a late, older event must find the tombstone rather than re-create the company.
    codat_deleted_at = models.DateTimeField("deleted at Codat", null=True, blank=True)
    # When the newest fact applied to this row was observed; older facts are not applied.
    observed_at = models.DateTimeField("last observed", null=True, blank=True)
    # generatedDate of the newest webhook applied to this row (observed_at may be later: an API
    # answer).
    last_event_at = models.DateTimeField("last webhook event", null=True, blank=True)
    mirrored_at = models.DateTimeField("mirror updated", auto_now=True)

    class Meta:
        ordering = ("name", "id")
        # The company list's order: a page of 100 is read from the index, not sorted.
        indexes = (models.Index(fields=("name", "id"), name="company_name_order"),)
        verbose_name_plural = "companies"
        permissions = (("run_operations", "Can run operations against Codat"),)
        constraints = (models.CheckConstraint(condition=~Q(name=""), name="company_has_name"),)

    def __str__(self):
        return self.name


class StatusHelp(NamedTuple):
    """What a Codat status means and what an operator can do about it (the admin's tooltips)."""

    meaning: str
    action: str

    def __str__(self):
        return f"{self.meaning} What to do: {self.action}"


class ConnectionStatus(models.TextChoices):
    PENDING_AUTH = "PendingAuth", "Pending authorisation"
    LINKED = "Linked", "Linked"
    UNLINKED = "Unlinked", "Unlinked"
    DEAUTHORIZED = "Deauthorized", "Deauthorized"


CONNECTION_STATUS_HELP = {
    ConnectionStatus.PENDING_AUTH: StatusHelp(
        "The customer chose a platform but has not finished authorising Codat to read it.",
        "Send the customer the connection's link again; if linking failed, its errors say why.",
    ),
    ConnectionStatus.LINKED: StatusHelp(
        "Codat is authorised: reads and writes run.",
        "Nothing.",
    ),
    ConnectionStatus.UNLINKED: StatusHelp(
        "This side cut the connection. Data already read stays readable; nothing new is read.",
        "Link the platform again if the customer is to share data again.",
    ),
    ConnectionStatus.DEAUTHORIZED: StatusHelp(
        "Codat lost access (the customer revoked it, or it expired). Data already read stays"
        " readable; nothing new is read.",
        "Ask the customer to connect the platform again through the link.",
    ),
}

SourceType = models.TextChoices("SourceType", [(value, value) for value in SOURCE_TYPES])
assert tuple(ConnectionStatus.values) == CONNECTION_STATUSES
assert set(CONNECTION_STATUS_HELP) == set(ConnectionStatus)


class Connection(models.Model):
    """A company's link to one accounting, banking or commerce platform."""

    codat_id = models.UUIDField("Codat id", unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="connections")
    integration_id = models.CharField(max_length=64, blank=True)
    # Four characters such as "gbol" (Xero); Codat stopped requiring it in 2026.
    integration_key = models.CharField(max_length=4, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    platform_name = models.CharField(max_length=100)
    source_type = models.CharField(max_length=16, choices=SourceType.choices)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices)
    link_url = models.URLField(max_length=500)
    last_sync = models.DateTimeField(null=True, blank=True)
    codat_created_at = models.DateTimeField("created at Codat", null=True, blank=True)
    # Codat's dataConnectionErrors, as it sent them.
    errors = models.JSONField(default=list, blank=True)
    # Kept as a tombstone when Codat deletes the connection (see Company.codat_deleted_at).
    codat_deleted_at = models.DateTimeField("deleted at Codat", null=True, blank=True)
    observed_at = models.DateTimeField("last observed", null=True, blank=True)
    last_event_at = models.DateTimeField("last webhook event", null=True, blank=True)
    mirrored_at = models.DateTimeField("mirror updated", auto_now=True)

    class Meta:
        ordering = ("company", "platform_name", "id")
        indexes = (
            # The dashboard's companies per connection status (and the linked count behind the
            # quota estimate) are counted from this index alone, without reading the rows.
            models.Index(fields=("status", "company"), name="connection_status_company"),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(status__in=ConnectionStatus.values), name="connection_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source_type__in=SourceType.values),
                name="connection_source_type_valid",
            ),
        )

    def __str__(self):
        return f"{self.platform_name} ({self.status})"


class DatasetStatus(models.TextChoices):
    """The status of one read (Codat's PullOperation.status and DataStatus.currentStatus)."""

    INITIAL = "Initial", "Not started"
    QUEUED = "Queued", "Queued"
    FETCHING = "Fetching", "Fetching"
    MAP_QUEUED = "MapQueued", "Waiting to map"
    MAPPING = "Mapping", "Mapping"
    COMPLETE = "Complete", "Complete"
    FETCH_ERROR = "FetchError", "Fetch failed"
    MAP_ERROR = "MapError", "Mapping failed"
    INTERNAL_ERROR = "InternalError", "Codat internal error"
    PROCESSING_QUEUED = "ProcessingQueued", "Waiting to process"
    PROCESSING = "Processing", "Processing"
    PROCESSING_ERROR = "ProcessingError", "Processing failed"
    VALIDATION_QUEUED = "ValidationQueued", "Waiting to validate"
    VALIDATING = "Validating", "Validating"
    VALIDATION_ERROR = "ValidationError", "Validation failed"
    AUTH_ERROR = "AuthError", "Authorisation failed"
    CANCELLED = "Cancelled", "Cancelled"
    NOT_SUPPORTED = "NotSupported", "Not supported by the platform"
    RATE_LIMIT_ERROR = "RateLimitError", "Rate limited"
    PERMISSIONS_ERROR = "PermissionsError", "Missing permissions"
    PREREQUISITE_NOT_MET = "PrerequisiteNotMet", "Prerequisite not met"


_WAIT = "Nothing: the read moves on by itself."
_QUEUE_AGAIN = (
    "Refresh it later; if it keeps failing, give Codat support the read's id (the latest sync id)."
)

DATASET_STATUS_HELP = {
    DatasetStatus.INITIAL: StatusHelp("The read exists but has not been queued yet.", _WAIT),
    DatasetStatus.QUEUED: StatusHelp(
        "Waiting for Codat to start fetching. Reads from desktop (on-premise) platforms wait here"
        " until the customer's connector is online.",
        "Wait; if it stays queued for a desktop platform, ask the customer to start the connector.",
    ),
    DatasetStatus.FETCHING: StatusHelp("Codat is pulling records from the platform.", _WAIT),
    DatasetStatus.MAP_QUEUED: StatusHelp(
        "Records fetched; waiting to be put into Codat's standard shape.", _WAIT
    ),
    DatasetStatus.MAPPING: StatusHelp(
        "Codat is putting the fetched records into its standard shape.", _WAIT
    ),
    DatasetStatus.COMPLETE: StatusHelp(
        "The read finished: the data is as fresh as its completion time.", "Nothing."
    ),
    DatasetStatus.FETCH_ERROR: StatusHelp(
        "Codat could not fetch from the platform, for example during the platform's maintenance.",
        _QUEUE_AGAIN,
    ),
    DatasetStatus.MAP_ERROR: StatusHelp(
        "Records were fetched but could not be put into Codat's standard shape.", _QUEUE_AGAIN
    ),
    DatasetStatus.INTERNAL_ERROR: StatusHelp("The read failed inside Codat.", _QUEUE_AGAIN),
    DatasetStatus.PROCESSING_QUEUED: StatusHelp(
        "Records mapped; waiting for Codat's processing.", _WAIT
    ),
    DatasetStatus.PROCESSING: StatusHelp("Codat is processing the records.", _WAIT),
    DatasetStatus.PROCESSING_ERROR: StatusHelp("Codat's processing failed.", _QUEUE_AGAIN),
    DatasetStatus.VALIDATION_QUEUED: StatusHelp(
        "Records read; waiting for Codat's validation.", _WAIT
    ),
    DatasetStatus.VALIDATING: StatusHelp("Codat is checking the records it read.", _WAIT),
    DatasetStatus.VALIDATION_ERROR: StatusHelp(
        "Codat's checks of the records failed.",
        "Look at the read's issues; refresh it later, and give Codat support the read's id if it"
        " keeps failing.",
    ),
    DatasetStatus.AUTH_ERROR: StatusHelp(
        "The platform refused Codat's access: the connection needs authorising again.",
        "Ask the customer to connect the platform again through the connection's link.",
    ),
    DatasetStatus.CANCELLED: StatusHelp(
        "The read was stopped before it finished.", "Refresh it if the data is needed."
    ),
    DatasetStatus.NOT_SUPPORTED: StatusHelp(
        "The customer's platform does not offer this data type.",
        "Nothing: no refresh will bring it. Expect no data of this type from this platform.",
    ),
    DatasetStatus.RATE_LIMIT_ERROR: StatusHelp(
        "The platform refused further requests for now (its own rate limit, not the portal's).",
        "Refresh it later.",
    ),
    DatasetStatus.PERMISSIONS_ERROR: StatusHelp(
        "The platform user who linked the connection may not read this data.",
        "Ask the customer to connect again as a user allowed to read it (often an administrator).",
    ),
    DatasetStatus.PREREQUISITE_NOT_MET: StatusHelp(
        "The read needs something that is not there yet, such as another data type read first.",
        "Read the error message of the read; refresh once what it names is in place.",
    ),
}
assert tuple(DatasetStatus.values) == DATASET_STATUSES
assert set(DATASET_STATUS_HELP) == set(DatasetStatus)

DATASET_ERROR_STATUSES = frozenset(
    value for value in DATASET_STATUSES if value.endswith("Error")
) | {"Cancelled", "PrerequisiteNotMet"}


class DataTypeStatus(models.Model):
    """Codat's data status for one company and data type."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="data_type_statuses"
    )
    data_type = models.ForeignKey(
        "products.DataType", on_delete=models.PROTECT, related_name="company_statuses"
    )
    # Empty until the first sync: Codat then reports the data type with no status at all.
    current_status = models.CharField(
        max_length=24, choices=DatasetStatus.choices, blank=True, default=""
    )
    last_successful_sync = models.DateTimeField(null=True, blank=True)
    latest_sync_id = models.UUIDField(null=True, blank=True)
    latest_successful_sync_id = models.UUIDField(null=True, blank=True)
    # When a read last brought new or changed records (read.completed `recordsModified`).
    records_last_modified_at = models.DateTimeField("records last changed", null=True, blank=True)
    # The `issues` (validation warnings, errors) of the latest read event, as Codat sent them.
    last_read_issues = models.JSONField(default=list, blank=True)
    observed_at = models.DateTimeField("last observed", null=True, blank=True)
    # generatedDate of the newest read event applied: the missed-event reconciler compares it
    # with Codat's lastSuccessfulSync, so a data-status answer from the API does not move it.
    last_event_at = models.DateTimeField("last webhook event", null=True, blank=True)
    mirrored_at = models.DateTimeField("mirror updated", auto_now=True)

    class Meta:
        ordering = ("company", "data_type")
        verbose_name = "data-type status"
        verbose_name_plural = "data-type statuses"
        # The company list's status filter (EXISTS by status) and its count.
        indexes = (
            models.Index(fields=("current_status", "company"), name="data_type_status_by_status"),
            # The dashboard's failing reads by status and commonest first issue, read from this
            # (small: only failing rows) index alone instead of from the failing rows.
            models.Index(
                fields=("current_status",),
                include=("last_read_issues",),
                condition=Q(current_status__in=sorted(DATASET_ERROR_STATUSES)),
                name="data_type_status_failing",
            ),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("company", "data_type"), name="data_type_status_unique"
            ),
            models.CheckConstraint(
                condition=Q(current_status="") | Q(current_status__in=DatasetStatus.values),
                name="data_type_status_valid",
            ),
        )

    def __str__(self):
        return f"{self.data_type_id}: {self.current_status or 'never synced'}"


class PullOperation(models.Model):
    """One read (dataset) of one data type for one company, as Codat reports it."""

    codat_id = models.UUIDField("Codat id", unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="pull_operations")
    connection = models.ForeignKey(
        Connection,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pull_operations",
    )
    data_type = models.ForeignKey(
        "products.DataType", on_delete=models.PROTECT, related_name="pull_operations"
    )
    status = models.CharField(max_length=24, choices=DatasetStatus.choices)
    status_description = models.CharField(max_length=255, blank=True)
    error_message = models.TextField(blank=True)
    requested = models.DateTimeField()
    completed = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    is_completed = models.BooleanField(default=False)
    is_errored = models.BooleanField(default=False)
    observed_at = models.DateTimeField("last observed", null=True, blank=True)
    mirrored_at = models.DateTimeField("mirror updated", auto_now=True)

    class Meta:
        ordering = ("-requested", "id")
        indexes = (models.Index(fields=("company", "-requested"), name="pull_op_company_recent"),)
        constraints = (
            models.CheckConstraint(
                condition=Q(status__in=DatasetStatus.values), name="pull_operation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=100),
                name="pull_operation_progress_percent",
            ),
        )

    def __str__(self):
        return f"{self.data_type_id} {self.status}"


class ProductReadStatus(models.Model):
    """How one company's reads of one data type are going for one of its products, from the
    `{product}.read.completed` events Codat sends for that product's reads.

    Kept per product beside the data type's own status because Codat reads a data type for each
    product that holds it on that product's schedule: a successful read for one product must not
    hide a read another product missed (teams on different use cases are not to be affected by
    each other's syncs). Every data type of a held assignment has a row
    (`companies.services.product_reads_follow`), so "what is stale" is an index range scan on
    `due_from`, whatever the size of the book.
    """

    assignment = models.ForeignKey(
        "products.CompanyProduct", on_delete=models.CASCADE, related_name="read_statuses"
    )
    # The assignment's product, copied here for the (product, due_from) index the stale query
    # scans; an assignment never changes product.
    product = models.ForeignKey("products.Product", on_delete=models.PROTECT, related_name="+")
    data_type = models.ForeignKey("products.DataType", on_delete=models.PROTECT, related_name="+")
    # Empty until the product's first read of the data type finishes.
    last_status = models.CharField(
        max_length=24, choices=DatasetStatus.choices, blank=True, default=""
    )
    last_read_at = models.DateTimeField("last read finished", null=True, blank=True)
    last_successful_read = models.DateTimeField(null=True, blank=True)
    last_read_issues = models.JSONField(default=list, blank=True)
    # The product's schedule counts from here: its last successful read of the data type, or
    # when the assignment became active if none has succeeded since.
    due_from = models.DateTimeField()
    observed_at = models.DateTimeField("last observed", null=True, blank=True)
    last_event_at = models.DateTimeField("last webhook event", null=True, blank=True)
    mirrored_at = models.DateTimeField("mirror updated", auto_now=True)

    class Meta:
        ordering = ("assignment", "data_type")
        verbose_name = "product read status"
        verbose_name_plural = "product read statuses"
        constraints = (
            models.UniqueConstraint(
                fields=("assignment", "data_type"), name="product_read_status_unique"
            ),
            models.CheckConstraint(
                condition=Q(last_status="") | Q(last_status__in=DatasetStatus.values),
                name="product_read_status_valid",
            ),
        )
        indexes = (
            models.Index(fields=("product", "due_from"), name="product_read_due"),
            models.Index(fields=("due_from",), name="product_read_due_any"),
        )

    def __str__(self):
        return f"{self.data_type_id} for {self.product_id}: {self.last_status or 'not read yet'}"


class ErasureState(models.TextChoices):
    # The delete_company operation is asking Codat (or waiting for a second person's approval).
    REQUESTED = "requested", "Deleting at Codat"
    # Codat deleted the company and the portal's copies are gone; consent evidence is kept
    # until its retention ends.
    ERASED = "erased", "Erased (consent evidence kept under retention)"
    # The retention run removed the last consent evidence: only this record is left.
    EVIDENCE_PURGED = "evidence_purged", "Erased, evidence deleted"
    FAILED = "failed", "Codat refused the deletion"


class CompanyErasure(models.Model):
    """A GDPR erasure of one company, and afterwards its tombstone: that a company with this
    Codat id was erased, when, by whom and under which approval. It keeps no personal data
    (no name, no contacts) and no foreign key to the company, whose row goes in the end.
    """

    codat_id = models.UUIDField("Codat id", unique=True)
    state = models.CharField(
        max_length=16, choices=ErasureState.choices, default=ErasureState.REQUESTED
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    # The staff member by id and login name, as the audit trail keeps them: a later deleted
    # account neither rewrites nor blocks the record.
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    approval_id = models.BigIntegerField(
        null=True, blank=True, help_text="the four-eyes approval it ran under, if one was needed"
    )
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="Codat confirmed; the portal's copies were deleted"
    )
    evidence_purged_at = models.DateTimeField(
        null=True, blank=True, help_text="the retention run deleted the last consent evidence"
    )
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ("-requested_at", "-id")
        permissions = (("erase_company", "Can erase a company (GDPR)"),)
        constraints = (
            models.CheckConstraint(
                condition=Q(state__in=ErasureState.values), name="company_erasure_state_valid"
            ),
        )

    def __str__(self):
        return f"Erasure of company {self.codat_id} ({self.get_state_display()})"
