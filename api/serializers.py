"""Output shapes shared by several endpoints. Inputs and filters sit with their view."""

from rest_framework import serializers

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
