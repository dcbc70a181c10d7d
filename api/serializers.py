"""Output shapes shared by several endpoints. Inputs and filters sit with their view."""

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bankfeeds.models import (
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    SourceAccount,
    TransactionState,
)
from bankfeeds.rules import LINK_LIFETIME
from companies.models import Company, Connection, DataTypeStatus
from consent.models import ConsentEvent, ConsentRequest
from operations.models import Job, Operation
from products.models import CompanyProduct, Product
from webhooks.models import WebhookEvent


class ConnectionOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="codat_id")

    class Meta:
        model = Connection
        fields = (
            "id",
            "platform_name",
            "integration_key",
            "source_type",
            "status",
            "last_sync",
            "errors",
        )


class CompanyProductOutput(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="identifier", read_only=True)

    class Meta:
        model = CompanyProduct
        fields = ("product", "status", "status_changed_at")


class CompanySummaryOutput(serializers.ModelSerializer):
    """A row of the company list: the company, its connections' statuses and its products."""

    id = serializers.UUIDField(source="codat_id")
    connections = ConnectionOutput(many=True, read_only=True)
    products = CompanyProductOutput(source="product_assignments", many=True, read_only=True)

    class Meta:
        model = Company
        fields = (
            "id",
            "name",
            "description",
            "tags",
            "last_sync",
            "codat_deleted_at",
            "connections",
            "products",
        )


class DataTypeStatusOutput(serializers.ModelSerializer):
    data_type = serializers.CharField(source="data_type_id")

    class Meta:
        model = DataTypeStatus
        fields = ("data_type", "current_status", "last_successful_sync", "records_last_modified_at")


class OperationOutput(serializers.ModelSerializer):
    company = serializers.SerializerMethodField()
    product = serializers.SlugRelatedField(slug_field="identifier", read_only=True, allow_null=True)
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    error = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = (
            "id",
            "kind",
            "state",
            "company",
            "product",
            "data_types",
            "attempts",
            "next_attempt_at",
            "error",
            "result",
            "job",
            "requested_by",
            "created_at",
            "finished_at",
        )

    def get_company(self, operation) -> str | None:
        """The company's Codat id (a create gets it once Codat has answered)."""
        return str(operation.company.codat_id) if operation.company_id else None

    def get_error(self, operation) -> dict | None:
        """Codat's reason for the last failure, its HTTP status and correlation id."""
        if not operation.last_error:
            return None
        return {
            "reason": operation.last_error,
            "status": operation.last_error_status,
            "correlation_id": operation.last_error_correlation_id or None,
        }


class JobOutput(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="identifier", read_only=True, allow_null=True)
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Job
        fields = (
            "id",
            "kind",
            "description",
            "product",
            "data_types",
            "requested_by",
            "created_at",
            "cancelled_at",
        )


class ProductOutput(serializers.ModelSerializer):
    data_types = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = (
            "identifier",
            "name",
            "kind",
            "description",
            "schedule_kind",
            "schedule_time",
            "data_types",
        )

    def get_data_types(self, product) -> list[dict]:
        return [
            {"data_type": link.data_type_id, "optional": link.is_optional}
            for link in product.product_data_types.all()
        ]


class ConsentEventOutput(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="identifier", read_only=True)

    class Meta:
        model = ConsentEvent
        fields = (
            "id",
            "receipt_id",
            "occurred_at",
            "product",
            "action",
            "data_types",
            "text_hash",
            "channel",
            "actor_name",
            "request",
        )


class ConsentRequestOutput(serializers.ModelSerializer):
    products = serializers.SlugRelatedField(slug_field="identifier", read_only=True, many=True)

    class Meta:
        model = ConsentRequest
        fields = (
            "id",
            "products",
            "reason",
            "created_at",
            "expires_at",
            "opened_at",
            "answered_at",
        )


class WebhookEventOutput(serializers.ModelSerializer):
    company = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEvent
        fields = (
            "id",
            "webhook_id",
            "event_type",
            "generated_at",
            "company",
            "state",
            "state_reason",
            "received_at",
            "processed_at",
        )

    def get_company(self, event) -> str | None:
        return str(event.company_codat_id) if event.company_codat_id else None


class WebhookEventDetailOutput(WebhookEventOutput):
    class Meta(WebhookEventOutput.Meta):
        fields = (*WebhookEventOutput.Meta.fields, "body")


# -- bank feeds -------------------------------------------------------------------------------


class BankFeedConnectionOutput(serializers.ModelSerializer):
    """A company's connection to a bank-feeds platform and the SMB's links."""

    id = serializers.IntegerField(read_only=True, help_text="The portal's id for the connection.")
    codat_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="Codat's id, once Codat has created it."
    )
    platform_name = serializers.CharField(source="get_platform_display", read_only=True)
    link_expires_at = serializers.SerializerMethodField()
    mapping_url = serializers.SerializerMethodField()

    class Meta:
        model = BankFeedConnection
        fields = (
            "id",
            "codat_id",
            "platform",
            "platform_name",
            "state",
            "link_url",
            "link_url_fetched_at",
            "link_expires_at",
            "mapping_url",
            "last_error",
            "created_at",
        )

    def get_link_expires_at(self, connection) -> datetime | None:
        """When the link's one-time code stops working (QuickBooks Online: an hour after it
        was read); null where the link does not expire."""
        lifetime = LINK_LIFETIME.get(connection.platform)
        if lifetime is None or connection.link_url_fetched_at is None:
            return None
        return connection.link_url_fetched_at + lifetime

    def get_mapping_url(self, connection) -> str | None:
        """The SMB's page for mapping its accounts (and seeing what synced), once the
        connection exists at Codat; it works for BANK_FEEDS_MAPPING_LINK_DAYS."""
        from bankfeeds.services import mapping_link_path
        from consent.services import public_url

        if connection.codat_id is None:
            return None
        return public_url(mapping_link_path(connection=connection))


class BankFeedAccountOutput(serializers.ModelSerializer):
    """A source account with its mapping at Codat and how many of its transactions are where."""

    id = serializers.CharField(source="account_id", help_text="The bank's id for the account.")
    platform = serializers.CharField(source="connection.platform")
    connection = serializers.UUIDField(source="connection.codat_id", allow_null=True)
    connection_id = serializers.IntegerField(
        read_only=True, help_text="The portal's id for the connection (bank-feed-connections)."
    )
    transactions = serializers.SerializerMethodField()
    latest_synced = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="The date of the account's latest transaction Codat took (local, as sent).",
    )

    class Meta:
        model = SourceAccount
        fields = (
            "id",
            "account_name",
            "account_type",
            "currency",
            "platform",
            "connection",
            "connection_id",
            "state",
            "mapping_status",
            "target_account_name",
            "feed_start_date",
            "mapping_error",
            "transactions",
            "latest_synced",
        )

    @extend_schema_field(
        {
            "type": "object",
            "properties": {state: {"type": "integer"} for state in TransactionState.values},
            "required": list(TransactionState.values),
        }
    )
    def get_transactions(self, account) -> dict:
        # Annotated by bankfeeds.selectors.accounts_with_progress.
        return {state: getattr(account, f"{state}_count") for state in TransactionState.values}


@extend_schema_field(
    {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"}
)
class LocalDateTimeField(serializers.DateTimeField):
    """A wall time without an offset (not an RFC 3339 date-time): Codat ignores offsets."""

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M:%S", **kwargs)


class BankTransactionOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="transaction_id", help_text="The bank's id.")
    date = LocalDateTimeField(help_text="The local date-time, as Codat reads it (no offset).")
    push = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = BankTransaction
        fields = (
            "id",
            "date",
            "amount",
            "balance",
            "transaction_type",
            "description",
            "counterparty",
            "reference",
            "reconciled",
            "state",
            "set_aside_reason",
            "warnings",
            "push",
            "created_at",
        )


class BankFeedPushOutput(serializers.ModelSerializer):
    class Meta:
        model = BankFeedPush
        fields = (
            "id",
            "status",
            "transaction_count",
            "first_date",
            "last_date",
            "sent_at",
            "completed_at",
            "error",
            "created_at",
        )
