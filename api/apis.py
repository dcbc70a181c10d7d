"""The endpoints of /api/v1/: validate, call one service or selector, serialize.

Each view names the scope each method needs (`scopes`, checked by api.permissions against
core/roles.py); errors are raised and become problem+json in api/problems.py; every POST is
`@idempotent`. A write passes `request.user` as the actor: for an API key that is the key's own
user (api/models.py), so the operation, job or consent record names the key.
"""

import uuid
from contextlib import ExitStack

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors
from api.idempotency import idempotent
from api.models import ApiKey
from api.pagination import ApiCursorPagination
from api.permissions import scopes_of
from api.problems import UNPROCESSABLE, Conflict, ConflictWithIds
from api.serializers import (
    BankFeedAccountOutput,
    BankFeedConnectionOutput,
    BankFeedPushOutput,
    BankTransactionOutput,
    CompanyProductOutput,
    CompanySummaryOutput,
    ConnectionOutput,
    ConsentEventOutput,
    ConsentRequestOutput,
    DataTypeStatusOutput,
    JobOutput,
    OperationOutput,
    ProductOutput,
    WebhookEventDetailOutput,
    WebhookEventOutput,
)
from audit.context import acting, client_ip
from audit.models import Via
from bankfeeds import selectors as bankfeed_selectors
from bankfeeds.models import (
    AccountType,
    BankFeedConnection,
    Platform,
    SourceAccount,
    TransactionState,
    TransactionType,
)
from bankfeeds.rules import ROUTING_TYPES, BankFeedInvalid
from bankfeeds.services import (
    TransactionConflict,
    bank_feed_company_onboard,
    bank_feed_connection_create,
    bank_feed_link_refresh,
    source_account_create,
    source_account_delete,
    source_account_update,
    transactions_submit,
)
from codat.data_types import ALL_DATA_TYPES
from companies.models import Company, ConnectionStatus, DatasetStatus
from consent.receipts import receipt_document
from consent.selectors import consent_matrix, consent_receipt_events, reconfirm_deadline
from consent.services import (
    consent_request_create,
    manage_link_path,
    product_add_or_request_consent,
    public_url,
)
from core.roles import SCOPE_CATALOGUE, SCOPE_CONSENT, SCOPE_OPERATE, SCOPE_READ
from operations.models import Job, OperationKind, OperationState
from operations.selectors import freshness_by_product, job_failures, job_progress
from operations.services import (
    company_create,
    company_refresh_all_data,
    company_refresh_data_type,
    job_cancel_rest,
    job_retry_failed,
    product_refresh,
    product_remove,
)
from products.models import CompanyProduct, CompanyProductStatus, Product, ProductKind, ScheduleKind
from products.services import product_define
from webhooks.models import EventState, WebhookEvent

# -- shared -----------------------------------------------------------------------------------


class ApiView(APIView):
    pagination_class = ApiCursorPagination

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._acting = ExitStack()
        if isinstance(request.auth, ApiKey):
            # What the services change for this request is the key's doing, in the audit trail
            # (audit/context.py); a staff session is named by the middleware already.
            self._acting.enter_context(
                acting(
                    user=request.user,
                    via=Via.API_KEY,
                    ip=client_ip(request),
                    api_key=f"{request.auth.name} ({request.auth.prefix})",
                )
            )

    def finalize_response(self, request, response, *args, **kwargs):
        if stack := getattr(self, "_acting", None):
            stack.close()
        response = super().finalize_response(request, response, *args, **kwargs)
        window = getattr(request, "rate_limit_window", None)
        if window is not None:
            for name, value in window.headers().items():
                response[name] = value
        return response

    def paginated(self, queryset, output, *, ordering: str = "-id"):
        paginator = self.pagination_class()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(
            output(page, many=True, context={"request": self.request}).data
        )


def unprocessable(field: str, reason: str) -> exceptions.ValidationError:
    """Well-formed input that cannot be acted on: answered 422 (api/problems.py)."""
    return exceptions.ValidationError({field: reason}, code=UNPROCESSABLE)


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": 9,
        "propertyNames": {"minLength": 1, "maxLength": 27},
        "additionalProperties": {"type": "string", "maxLength": 100},
    }
)
class TagsField(serializers.DictField):
    """Codat's tags: at most 10 (the portal uses one), keys of 1-27 characters."""

    child = serializers.CharField(max_length=100, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        tags = super().to_internal_value(data)
        if len(tags) > 9:
            raise serializers.ValidationError("At most 9 tags (the portal needs a tenth).")
        if any(not 1 <= len(key) <= 27 for key in tags):
            raise serializers.ValidationError("A tag's key has 1 to 27 characters.")
        return tags


@extend_schema_field({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"})
class DailyTimeField(serializers.TimeField):
    def __init__(self, **kwargs):
        super().__init__(input_formats=["%H:%M"], format="%H:%M", **kwargs)


def _filters(serializer_class, request) -> dict:
    # A plain dict: DRF reads an empty value of a QueryDict as "not given", which would let
    # `?state=` through as no filter at all instead of the invalid choice it is.
    filters = serializer_class(data=request.query_params.dict())
    filters.is_valid(raise_exception=True)
    return filters.validated_data


def _input(serializer_class, request) -> dict:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"body": "Send a JSON object."})
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


def company_or_404(company_id: str) -> Company:
    """The company whose Codat id is `company_id`: 404 for anything else, malformed or not."""
    try:
        codat_id = uuid.UUID(company_id)
    except ValueError:
        codat_id = None
    company = selectors.company_get(codat_id=codat_id) if codat_id else None
    if company is None:
        raise exceptions.NotFound(f"No company with id {company_id!r}.")
    return company


def _is_slug(value: str) -> bool:
    # Checked before any query: a NUL in a path would otherwise reach PostgreSQL and fail there.
    return (
        bool(value)
        and len(value) <= 64
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    )


def product_or_404(identifier: str) -> Product:
    product = (
        Product.objects.filter(identifier=identifier).first() if _is_slug(identifier) else None
    )
    if product is None:
        raise exceptions.NotFound(f"No product {identifier!r} in the catalogue.")
    return product


def _int_or_404(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise exceptions.NotFound(f"No {what} with id {value!r}.")
    return int(value)


class ProductIdentifierField(serializers.SlugField):
    """A catalogue product named by its identifier, validated to exist."""

    def run_validation(self, data=serializers.empty):
        # Validated as a slug first; the lookup comes after, so validators see the identifier.
        identifier = super().run_validation(data)
        product = Product.objects.filter(identifier=identifier).first()
        if product is None:
            raise serializers.ValidationError(
                f"No product {identifier!r} in the catalogue.", code=UNPROCESSABLE
            )
        return product


COMPANY_ID = OpenApiParameter(
    "company_id", str, OpenApiParameter.PATH, description="The company's Codat id (a UUID)."
)
PRODUCT = OpenApiParameter("product", str, OpenApiParameter.PATH, description="Identifier.")


# -- companies --------------------------------------------------------------------------------


class CompanyListApi(ApiView):
    scopes = {"GET": SCOPE_READ, "POST": SCOPE_OPERATE}

    class FilterSerializer(serializers.Serializer):
        connection_status = serializers.ChoiceField(
            choices=ConnectionStatus.choices,
            required=False,
            help_text="Companies with a connection in this status.",
        )
        product = ProductIdentifierField(required=False, help_text="Companies with this product.")
        product_status = serializers.ChoiceField(
            choices=CompanyProductStatus.choices,
            required=False,
            help_text="Companies with a product in this status (with `product`: that product).",
        )
        data_type = serializers.ChoiceField(
            choices=ALL_DATA_TYPES, required=False, help_text="With `data_type_status`."
        )
        data_type_status = serializers.ChoiceField(
            choices=[*DatasetStatus.values, selectors.NEVER_SYNCED],
            required=False,
            help_text="Companies with a data type (with `data_type`: that one) in this status.",
        )
        # Freshness (stale products) comes with the freshness table: add its filter here.

    @extend_schema_serializer(component_name="CompanyCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=255, trim_whitespace=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        tags = TagsField(required=False, default=dict)
        products = serializers.ListField(
            child=ProductIdentifierField(), required=False, default=list, max_length=20
        )

        def validate_name(self, value):
            if not value.strip():
                raise serializers.ValidationError("A company needs a name.", code=UNPROCESSABLE)
            return value.strip()

        def validate_products(self, value):
            if len({product.pk for product in value}) != len(value):
                raise serializers.ValidationError("Name each product once.", code=UNPROCESSABLE)
            return value

    class CreateOutput(serializers.Serializer):
        operation = OperationOutput()
        products = inline_serializer(
            "CompanyCreateProduct",
            {
                "product": serializers.CharField(),
                "status": serializers.ChoiceField(choices=["awaiting_consent"]),
                "detail": serializers.CharField(),
            },
            many=True,
        )

    @extend_schema(
        operation_id="companies_list",
        parameters=[FilterSerializer],
        responses=CompanySummaryOutput(many=True),
    )
    def get(self, request):
        filters = _filters(self.FilterSerializer, request)
        companies = selectors.company_list(**filters)
        return self.paginated(companies, CompanySummaryOutput)

    @extend_schema(
        operation_id="companies_create",
        request=InputSerializer,
        responses={202: CreateOutput},
        description=(
            "Create a company at Codat. A new company has no consent on record, so each product "
            "asked for awaits consent: once Codat has created the company, a consent request is "
            "made for it (e-mailed to the `email` tag if there is one; create a link with "
            "`POST .../consent/requests/`), and the product is added when the company grants."
        ),
    )
    @idempotent
    def post(self, request):
        data = _input(self.InputSerializer, request)
        operation = company_create(
            name=data["name"],
            description=data["description"],
            tags=data["tags"],
            products_awaiting_consent=data["products"],
            requested_by=request.user,
        )
        body = {
            "operation": OperationOutput(operation).data,
            "products": [
                {
                    "product": product.identifier,
                    "status": "awaiting_consent",
                    "detail": "No consent is on record for a new company: a consent request is "
                    "made once Codat has created it, and the product is added when it grants.",
                }
                for product in data["products"]
            ],
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CompanyDetailApi(ApiView):
    class DetailOutput(CompanySummaryOutput):
        data_type_statuses = DataTypeStatusOutput(many=True, read_only=True)
        awaiting_consent = serializers.ListField(
            child=serializers.CharField(),
            read_only=True,
            help_text="Products whose add waits for the company's consent.",
        )
        consent = serializers.ListField(child=serializers.DictField(), read_only=True)
        freshness = serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField()),
            read_only=True,
            help_text=(
                "Per product identifier the company holds: its data types read on the product's"
                " schedule (`scheduled`), those overdue beyond the grace (`stale`) and those whose"
                " last read for this product failed (`failing`). Another product's read of a"
                " shared data type does not count."
            ),
        )

        class Meta(CompanySummaryOutput.Meta):
            fields = (
                *CompanySummaryOutput.Meta.fields,
                "data_type_statuses",
                "awaiting_consent",
                "consent",
                "freshness",
            )

    @extend_schema(
        operation_id="companies_retrieve", parameters=[COMPANY_ID], responses=DetailOutput
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        detail = selectors.company_detail(company=company)
        data = CompanySummaryOutput(company).data
        data["connections"] = ConnectionOutput(detail["connections"], many=True).data
        data["products"] = CompanyProductOutput(detail["products"], many=True).data
        data["data_type_statuses"] = DataTypeStatusOutput(
            detail["data_type_statuses"], many=True
        ).data
        data["awaiting_consent"] = [product.identifier for product in detail["awaiting_consent"]]
        data["consent"] = _consent_rows(company)
        identifiers = dict(Product.objects.values_list("pk", "identifier"))
        data["freshness"] = {
            identifiers[item.product_id]: {
                "scheduled": item.scheduled,
                "stale": item.stale,
                "failing": item.failing,
            }
            for item in freshness_by_product(company=company)
        }
        return Response(data)


def _consent_rows(company) -> list[dict]:
    # Every product of the catalogue (a handful), so a product never consented to shows `none`.
    _columns, rows = consent_matrix(company=company, products=Product.objects.all())
    result = []
    for row in rows:
        consent = row.consent
        deadline = reconfirm_deadline(consent.confirmed_at) if consent.confirmed_at else None
        result.append(
            {
                "product": row.product.identifier,
                "state": str(consent.state),
                "covered": row.covered,
                "data_types": sorted(consent.data_types),
                "missing_data_types": [cell.data_type for cell in row.cells if cell.missing],
                "granted_at": consent.granted_at,
                "confirmed_at": consent.confirmed_at,
                "reconfirm_by": deadline,
            }
        )
    return result


class CompanyProductAddApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="CompanyProductAddInput")
    class InputSerializer(serializers.Serializer):
        product = ProductIdentifierField()
        email = serializers.EmailField(
            required=False,
            allow_blank=True,
            default="",
            help_text="Where to send the consent link if consent is missing.",
        )

    class AddOutput(serializers.Serializer):
        product = serializers.CharField()
        status = serializers.ChoiceField(choices=["adding", "awaiting_consent"])
        consent_request = inline_serializer(
            "ProductAddConsentRequest",
            {
                "id": serializers.IntegerField(),
                "url": serializers.URLField(
                    allow_null=True, help_text="Only for a key with the consent scope; once."
                ),
            },
            allow_null=True,
        )

    @extend_schema(
        operation_id="companies_products_add",
        parameters=[COMPANY_ID],
        request=InputSerializer,
        responses={202: AddOutput},
    )
    @idempotent
    def post(self, request, company_id):
        company = company_or_404(company_id)
        data = _input(self.InputSerializer, request)
        product = data["product"]
        outcome = product_add_or_request_consent(
            company=company, product=product, user=request.user, email=data["email"]
        )
        if outcome.issued is not None:
            # The link lets whoever holds it answer for the company: only to consent keys.
            url = outcome.issued.url if SCOPE_CONSENT in scopes_of(request) else None
            body = {
                "product": product.identifier,
                "status": "awaiting_consent",
                "consent_request": {"id": outcome.issued.request.pk, "url": url},
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)
        if not outcome.added:
            current = CompanyProduct.objects.filter(company=company, product=product).first()
            raise Conflict(
                f"Not added: the company's {product.identifier} is "
                f"{current.status if current else 'not addable now'}."
            )
        body = {"product": product.identifier, "status": "adding", "consent_request": None}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CompanyProductRemoveApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema(
        operation_id="companies_products_remove",
        parameters=[COMPANY_ID, PRODUCT],
        request=None,
        responses={202: OperationOutput},
    )
    @idempotent
    def post(self, request, company_id, product):
        company = company_or_404(company_id)
        operation = product_remove(
            company=company, product=product_or_404(product), requested_by=request.user
        )
        return Response(OperationOutput(operation).data, status=status.HTTP_202_ACCEPTED)


class CompanyProductRefreshApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="CompanyProductRefreshInput")
    class InputSerializer(serializers.Serializer):
        data_types = serializers.ListField(
            child=serializers.ChoiceField(choices=ALL_DATA_TYPES),
            required=False,
            default=list,
            max_length=len(ALL_DATA_TYPES),
            help_text="Some of the product's data types; all of them if left out.",
        )

    @extend_schema(
        operation_id="companies_products_refresh",
        parameters=[COMPANY_ID, PRODUCT],
        request=InputSerializer,
        responses={202: OperationOutput},
    )
    @idempotent
    def post(self, request, company_id, product):
        company = company_or_404(company_id)
        product = product_or_404(product)
        data = _input(self.InputSerializer, request)
        operation = product_refresh(
            company=company,
            product=product,
            data_types=sorted(set(data["data_types"])),
            requested_by=request.user,
        )
        return Response(OperationOutput(operation).data, status=status.HTTP_202_ACCEPTED)


class CompanyRefreshApi(ApiView):
    """Refresh data with client-level sync settings: every data type, or one."""

    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="CompanyRefreshInput")
    class InputSerializer(serializers.Serializer):
        data_type = serializers.ChoiceField(
            choices=ALL_DATA_TYPES,
            required=False,
            help_text="One data type; every fetch-on-first-link data type if left out.",
        )
        connection = serializers.UUIDField(
            required=False, help_text="With `data_type`: only this connection."
        )

    @extend_schema(
        operation_id="companies_refresh",
        parameters=[COMPANY_ID],
        request=InputSerializer,
        responses={202: OperationOutput},
    )
    @idempotent
    def post(self, request, company_id):
        company = company_or_404(company_id)
        data = _input(self.InputSerializer, request)
        if "data_type" not in data:
            if "connection" in data:
                raise unprocessable("connection", "Give a data_type with a connection.")
            operation = company_refresh_all_data(company=company, requested_by=request.user)
        else:
            connection = None
            if "connection" in data:
                connection = company.connections.filter(codat_id=data["connection"]).first()
                if connection is None:
                    raise unprocessable("connection", "Not a connection of this company.")
            operation = company_refresh_data_type(
                company=company,
                data_type=data["data_type"],
                connection=connection,
                requested_by=request.user,
            )
        return Response(OperationOutput(operation).data, status=status.HTTP_202_ACCEPTED)


# -- consent ----------------------------------------------------------------------------------


class ConsentRowOutput(serializers.Serializer):
    product = serializers.CharField()
    state = serializers.CharField()
    covered = serializers.BooleanField(help_text="Consent covers every required data type.")
    data_types = serializers.ListField(child=serializers.CharField())
    missing_data_types = serializers.ListField(child=serializers.CharField())
    granted_at = serializers.DateTimeField(allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    reconfirm_by = serializers.DateTimeField(allow_null=True)


class CompanyConsentApi(ApiView):
    pagination_class = None  # one row per product of the catalogue: a handful

    @extend_schema(
        operation_id="companies_consent_retrieve",
        parameters=[COMPANY_ID],
        responses=ConsentRowOutput(many=True),
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        return Response(ConsentRowOutput(_consent_rows(company), many=True).data)


class CompanyConsentEventListApi(ApiView):
    scopes = {"GET": SCOPE_CONSENT}

    @extend_schema(
        operation_id="companies_consent_events_list",
        parameters=[COMPANY_ID],
        responses=ConsentEventOutput(many=True),
        description="The append-only evidence log, newest first.",
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        return self.paginated(selectors.consent_event_list(company=company), ConsentEventOutput)


class CompanyConsentReceiptApi(ApiView):
    scopes = {"GET": SCOPE_CONSENT}

    @extend_schema(
        operation_id="companies_consent_receipts_retrieve",
        parameters=[
            COMPANY_ID,
            OpenApiParameter("receipt_id", str, OpenApiParameter.PATH, description="A UUID."),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="The Kantara consent receipt of one decision.",
    )
    def get(self, request, company_id, receipt_id):
        company = company_or_404(company_id)
        try:
            receipt = uuid.UUID(receipt_id)
        except ValueError:
            receipt = None
        events = consent_receipt_events(company=company, receipt_id=receipt) if receipt else []
        if not events:
            raise exceptions.NotFound(f"No receipt {receipt_id!r} for this company.")
        return Response(
            receipt_document(events=events, manage_url=public_url(manage_link_path(company)))
        )


class CompanyConsentRequestListApi(ApiView):
    scopes = {"GET": SCOPE_CONSENT, "POST": SCOPE_CONSENT}

    @extend_schema_serializer(component_name="ConsentRequestCreateInput")
    class InputSerializer(serializers.Serializer):
        products = serializers.ListField(
            child=ProductIdentifierField(), min_length=1, max_length=20
        )
        email = serializers.EmailField(
            required=False, allow_blank=True, default="", help_text="Also e-mail the link here."
        )

    class IssuedOutput(ConsentRequestOutput):
        url = serializers.URLField(help_text="The one-time consent link: shown only here.")
        manage_url = serializers.URLField()

        class Meta(ConsentRequestOutput.Meta):
            fields = (*ConsentRequestOutput.Meta.fields, "url", "manage_url")

    @extend_schema(
        operation_id="companies_consent_requests_list",
        parameters=[COMPANY_ID],
        responses=ConsentRequestOutput(many=True),
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        return self.paginated(selectors.consent_request_list(company=company), ConsentRequestOutput)

    @extend_schema(
        operation_id="companies_consent_requests_create",
        parameters=[COMPANY_ID],
        request=InputSerializer,
        responses={201: IssuedOutput},
        description="A one-time consent link; the response is the only place it is shown.",
    )
    @idempotent
    def post(self, request, company_id):
        company = company_or_404(company_id)
        data = _input(self.InputSerializer, request)
        issued = consent_request_create(
            company=company, products=data["products"], email=data["email"], user=request.user
        )
        body = ConsentRequestOutput(issued.request).data
        body.update(url=issued.url, manage_url=issued.manage_url)
        return Response(body, status=status.HTTP_201_CREATED)


# -- bank feeds -------------------------------------------------------------------------------


def source_account_or_404(company: Company, account_id: str) -> SourceAccount:
    account = bankfeed_selectors.company_source_account_get(company=company, account_id=account_id)
    if account is None:
        raise exceptions.NotFound(f"The company has no bank-feed account {account_id!r}.")
    return account


ACCOUNT_ID = OpenApiParameter(
    "account_id", str, OpenApiParameter.PATH, description="The bank's id for the source account."
)
NUMBER_OR_TEXT = {"oneOf": [{"type": "number"}, {"type": "string", "maxLength": 40}]}


@extend_schema_field({**NUMBER_OR_TEXT, "description": "At most 2 decimal places."})
class _Amount(serializers.Field):
    pass


@extend_schema_field({**NUMBER_OR_TEXT, "nullable": True})
class _Balance(serializers.Field):
    pass


@extend_schema_serializer(component_name="BankTransactionInput")
class BankTransactionInput(serializers.Serializer):
    """Codat's BankTransactions fields, for the schema: bankfeeds/rules.py checks each row."""

    id = serializers.CharField(max_length=255, help_text="The bank's id; a transaction's key.")
    date = serializers.CharField(
        max_length=40, help_text="The local date-time, e.g. 2026-11-30T10:21:00; offsets ignored."
    )
    amount = _Amount(help_text="Negative for money out.")
    balance = _Balance(required=False, help_text="The running balance; needed except on QBO.")
    transactionType = serializers.ChoiceField(choices=TransactionType.values, required=False)
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    counterparty = serializers.CharField(max_length=255, required=False, allow_blank=True)
    reference = serializers.CharField(max_length=255, required=False, allow_blank=True)
    reconciled = serializers.BooleanField(required=False, allow_null=True)


CONNECTION_ID = OpenApiParameter(
    "connection_id",
    str,
    OpenApiParameter.PATH,
    description="The portal's id for the connection (`id` in its listing).",
)
PLATFORM_HELP = "Codat's bank-feeds platform key: " + ", ".join(
    f"`{value}` {label}" for value, label in Platform.choices
)


def connection_or_404(company: Company, connection_id: str) -> BankFeedConnection:
    connection = bankfeed_selectors.company_connection_get(
        company=company, connection_id=_int_or_404(connection_id, "bank-feed connection")
    )
    if connection is None:
        raise exceptions.NotFound(f"The company has no bank-feed connection {connection_id!r}.")
    return connection


def _bank_feed_rules(call, **kwargs):
    """Run a bank-feed service: its rules' refusals become 422s naming the field (as the
    transactions' do); a refusal of state (OperationRefused) is api/problems.py's 409."""
    try:
        return call(**kwargs)
    except BankFeedInvalid as error:
        raise unprocessable(error.field, error.reason) from None


class BankFeedCompanyOnboardApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="BankFeedCompanyInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=255, trim_whitespace=False)
        description = serializers.CharField(
            max_length=4000, required=False, allow_blank=True, default=""
        )
        platform = serializers.ChoiceField(choices=Platform.values, help_text=PLATFORM_HELP)

        def validate_name(self, value):
            if not value.strip():
                raise serializers.ValidationError("A company needs a name.", code=UNPROCESSABLE)
            return value.strip()

    @extend_schema_serializer(component_name="BankFeedCompanyCreateOutput")
    class CreateOutput(serializers.Serializer):
        operation = OperationOutput()

    @extend_schema(
        operation_id="bank_feed_companies_create",
        request=InputSerializer,
        responses={202: CreateOutput},
        description=(
            "Onboard a business for bank feeds: create the company at Codat and, once it "
            "exists, its connection to the platform. Follow the operation "
            "(`GET /operations/{id}/`): when it succeeded its `company` is the new company's "
            "id, whose `bank-feed-connections/` give the SMB's link. Source accounts may be "
            "created as soon as the connection is listed; they are sent once it exists at Codat."
        ),
    )
    @idempotent
    def post(self, request):
        data = _input(self.InputSerializer, request)
        operation = _bank_feed_rules(
            bank_feed_company_onboard,
            name=data["name"],
            description=data["description"],
            platform=data["platform"],
            requested_by=request.user,
        )
        return Response(
            {"operation": OperationOutput(operation).data}, status=status.HTTP_202_ACCEPTED
        )


class BankFeedConnectionListApi(ApiView):
    scopes = {"GET": SCOPE_READ, "POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="BankFeedConnectionInput")
    class InputSerializer(serializers.Serializer):
        platform = serializers.ChoiceField(choices=Platform.values, help_text=PLATFORM_HELP)

    @extend_schema(
        operation_id="bank_feed_connections_list",
        parameters=[COMPANY_ID],
        responses=BankFeedConnectionOutput(many=True),
        description=(
            "The company's bank-feed connections with the SMB's links: `link_url` to authorise "
            "the platform (QuickBooks Online's expires at `link_expires_at`; ask for a fresh "
            "one with `POST .../link/`) and `mapping_url`, the portal's page where the business "
            "maps its accounts and sees what synced."
        ),
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        connections = bankfeed_selectors.company_connections(company=company)
        return self.paginated(connections, BankFeedConnectionOutput, ordering="id")

    @extend_schema(
        operation_id="bank_feed_connections_create",
        parameters=[COMPANY_ID],
        request=InputSerializer,
        responses={202: BankFeedConnectionOutput},
        description="Connect an existing company to a bank-feeds platform (created at Codat "
        "by a worker: `state` is `creating` until then).",
    )
    @idempotent
    def post(self, request, company_id):
        company = company_or_404(company_id)
        data = _input(self.InputSerializer, request)
        connection = _bank_feed_rules(
            bank_feed_connection_create,
            company=company,
            platform=data["platform"],
            requested_by=request.user,
        )
        return Response(BankFeedConnectionOutput(connection).data, status=status.HTTP_202_ACCEPTED)


class BankFeedConnectionDetailApi(ApiView):
    @extend_schema(
        operation_id="bank_feed_connections_retrieve",
        parameters=[COMPANY_ID, CONNECTION_ID],
        responses=BankFeedConnectionOutput,
    )
    def get(self, request, company_id, connection_id):
        connection = connection_or_404(company_or_404(company_id), connection_id)
        return Response(BankFeedConnectionOutput(connection).data)


class BankFeedConnectionLinkApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    class LinkOutput(serializers.Serializer):
        operation = OperationOutput()
        connection = BankFeedConnectionOutput()

    @extend_schema(
        operation_id="bank_feed_connections_link_refresh",
        parameters=[COMPANY_ID, CONNECTION_ID],
        request=None,
        responses={202: LinkOutput},
        description=(
            "Read the connection's link again: for QuickBooks Online a fresh one-time code (each "
            "expires an hour after it is read). When the operation has succeeded, the "
            "connection's `link_url` and `link_expires_at` are the new ones. 409 while the "
            "connection does not exist at Codat yet."
        ),
    )
    @idempotent
    def post(self, request, company_id, connection_id):
        connection = connection_or_404(company_or_404(company_id), connection_id)
        operation = _bank_feed_rules(
            bank_feed_link_refresh, connection=connection, requested_by=request.user
        )
        body = {
            "operation": OperationOutput(operation).data,
            "connection": BankFeedConnectionOutput(connection).data,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}}
)
class _PlainObject(serializers.DictField):
    pass


class SourceAccountFieldsInput(serializers.Serializer):
    """Codat's SourceAccountV2 fields, for the schema: bankfeeds/rules.py checks them."""

    accountName = serializers.CharField(max_length=255)
    accountType = serializers.ChoiceField(choices=AccountType.values)
    accountNumber = serializers.CharField(max_length=64)
    sortCode = serializers.CharField(
        max_length=16, required=False, allow_blank=True, help_text="Required for GBP accounts."
    )
    currency = serializers.CharField(max_length=3, help_text="ISO 4217, e.g. GBP.")
    balance = _Amount(help_text="The account's balance now.")
    routingInfo = inline_serializer(
        "SourceAccountRoutingInfo",
        {
            "type": serializers.ChoiceField(choices=ROUTING_TYPES, required=False),
            "bankCode": serializers.CharField(max_length=255, required=False),
        },
        required=False,
    )
    accountInfo = _PlainObject(required=False, help_text="Codat's accountInfo, as given.")


def _source_account_fields(request, *, with_id: bool) -> dict:
    """The body as Codat names its fields, checked by bankfeeds/rules.py in the service (the
    same rules as the admin's), so a refusal names Codat's field (`sortCode`)."""
    if not isinstance(request.data, dict):
        raise unprocessable("body", "Send a JSON object.")
    data = dict(request.data)
    if not with_id:
        data.pop("id", None)
    return data


class BankFeedAccountListApi(ApiView):
    scopes = {"GET": SCOPE_READ, "POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="SourceAccountCreateInput")
    class InputSerializer(SourceAccountFieldsInput):
        id = serializers.CharField(max_length=255, help_text="The bank's id for the account.")
        connection_id = serializers.IntegerField(
            required=False,
            help_text="The connection to create it on (`bank-feed-connections/`); may be left "
            "out when the company has one.",
        )

    @extend_schema(
        operation_id="bank_feed_accounts_create",
        parameters=[COMPANY_ID],
        request=InputSerializer,
        responses={202: BankFeedAccountOutput},
        description=(
            "Create a source account (Codat's v2 fields), checked before anything is sent: a "
            "field that breaks Codat's rules is a 422 naming it. It is sent to Codat at once if "
            "the connection exists there, otherwise as soon as it does; `state` follows."
        ),
    )
    @idempotent
    def post(self, request, company_id):
        company = company_or_404(company_id)
        data = _source_account_fields(request, with_id=True)
        connection_id = data.pop("connection_id", None)
        if connection_id is None:
            connection = bankfeed_selectors.company_only_connection(company=company)
            if connection is None:
                raise unprocessable(
                    "connection_id",
                    "The company has no bank-feed connection or more than one: name it.",
                )
        else:
            if isinstance(connection_id, bool) or not isinstance(connection_id, int):
                raise unprocessable("connection_id", "must be the connection's id (a number)")
            connection = bankfeed_selectors.company_connection_get(
                company=company, connection_id=connection_id
            )
            if connection is None:
                raise unprocessable("connection_id", "The company has no such connection.")
        account = _bank_feed_rules(
            source_account_create, connection=connection, data=data, requested_by=request.user
        )
        account = bankfeed_selectors.source_account_with_progress(account=account)
        return Response(BankFeedAccountOutput(account).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="bank_feed_accounts_list",
        parameters=[COMPANY_ID],
        responses=BankFeedAccountOutput(many=True),
        description=(
            "The company's bank-feed source accounts: their mapping at Codat (`pending` until "
            "the business maps it, then `connecting`, `connected` or `disconnected`) and how "
            "many of their transactions are waiting, in a push, synced or set aside."
        ),
    )
    def get(self, request, company_id):
        company = company_or_404(company_id)
        accounts = bankfeed_selectors.company_source_accounts(company=company)
        return self.paginated(accounts, BankFeedAccountOutput, ordering="id")


class BankFeedAccountUpdateApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema_serializer(component_name="SourceAccountUpdateInput")
    class InputSerializer(SourceAccountFieldsInput):
        pass

    @extend_schema(
        operation_id="bank_feed_accounts_update",
        parameters=[COMPANY_ID, ACCOUNT_ID],
        request=InputSerializer,
        responses={202: BankFeedAccountOutput},
        description=(
            "Change the account at Codat: give all its v2 fields again (its id stays). Checked "
            "first, as on creation; `state` is `updating` until Codat has it. 409 for an "
            "account being deleted or deleted."
        ),
    )
    @idempotent
    def post(self, request, company_id, account_id):
        account = source_account_or_404(company_or_404(company_id), account_id)
        data = _source_account_fields(request, with_id=False)
        account = _bank_feed_rules(
            source_account_update, account=account, data=data, requested_by=request.user
        )
        account = bankfeed_selectors.source_account_with_progress(account=account)
        return Response(BankFeedAccountOutput(account).data, status=status.HTTP_202_ACCEPTED)


class BankFeedAccountDeleteApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema(
        operation_id="bank_feed_accounts_delete",
        parameters=[COMPANY_ID, ACCOUNT_ID],
        request=None,
        responses={202: BankFeedAccountOutput},
        description=(
            "Delete the account at Codat: its feed stops (what it already wrote stays in the "
            "accounting software). `state` is `deleting`, then `deleted`; its transactions and "
            "pushes stay readable here."
        ),
    )
    @idempotent
    def post(self, request, company_id, account_id):
        account = source_account_or_404(company_or_404(company_id), account_id)
        account = _bank_feed_rules(
            source_account_delete, account=account, requested_by=request.user
        )
        account = bankfeed_selectors.source_account_with_progress(account=account)
        return Response(BankFeedAccountOutput(account).data, status=status.HTTP_202_ACCEPTED)


class BankFeedTransactionListApi(ApiView):
    scopes = {"GET": SCOPE_READ, "POST": SCOPE_OPERATE}
    MAX_PER_REQUEST = 1000

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=TransactionState.choices, required=False)

    @extend_schema_serializer(component_name="BankTransactionsSubmitInput")
    class InputSerializer(serializers.Serializer):
        transactions = BankTransactionInput(many=True, min_length=1, max_length=1000)

    class SubmitOutput(serializers.Serializer):
        created = serializers.IntegerField(help_text="Transactions stored by this request.")
        unchanged = serializers.IntegerField(
            help_text="Transactions already stored with the same content: left as they were."
        )
        warnings = inline_serializer(
            "BankTransactionWarnings",
            {
                "id": serializers.CharField(),
                "warnings": serializers.ListField(child=serializers.CharField()),
            },
            many=True,
        )

    @extend_schema(
        operation_id="bank_feed_transactions_list",
        parameters=[COMPANY_ID, ACCOUNT_ID, FilterSerializer],
        responses=BankTransactionOutput(many=True),
        description="The account's transactions, latest date first, each with its state.",
    )
    def get(self, request, company_id, account_id):
        filters = _filters(self.FilterSerializer, request)
        account = source_account_or_404(company_or_404(company_id), account_id)
        transactions = bankfeed_selectors.account_transactions(
            account=account, state=filters.get("state", "")
        )
        return self.paginated(transactions, BankTransactionOutput, ordering=("-date", "-id"))

    @extend_schema(
        operation_id="bank_feed_transactions_submit",
        parameters=[COMPANY_ID, ACCOUNT_ID],
        request=InputSerializer,
        responses={200: SubmitOutput},
        description=(
            "Store up to 1,000 of the account's transactions, each once under its id; the "
            "pusher sends them to Codat in date order. A transaction already stored with the "
            "same content is left as it was; one stored with other content makes the request a "
            "409 naming the ids (`conflicting_ids`), and nothing of it is stored. A row that "
            "breaks Codat's rules is a 422 naming `transactions[i].field`, and nothing is "
            "stored either."
        ),
    )
    @idempotent
    def post(self, request, company_id, account_id):
        account = source_account_or_404(company_or_404(company_id), account_id)
        # Checked here and by bankfeeds/rules.py, not by the serializer: the rules are the ones
        # the CSV upload uses, and they name the row (`transactions[3].amount`).
        rows = request.data.get("transactions") if isinstance(request.data, dict) else None
        if not isinstance(rows, list) or not 1 <= len(rows) <= self.MAX_PER_REQUEST:
            raise unprocessable(
                "transactions", f"Give a list of 1 to {self.MAX_PER_REQUEST} transactions."
            )
        for index, row in enumerate(rows):
            # The CSV's text "true" is fine there; JSON has booleans.
            if isinstance(row, dict) and not isinstance(row.get("reconciled"), bool | None):
                raise unprocessable(f"transactions[{index}].reconciled", "must be true or false")
        try:
            submission = transactions_submit(account=account, rows=rows)
        except BankFeedInvalid as error:
            raise unprocessable(error.field, error.reason) from None
        except TransactionConflict as conflict:
            raise ConflictWithIds(str(conflict), conflict.transaction_ids) from None
        body = {
            "created": submission.created,
            "unchanged": submission.unchanged,
            "warnings": [
                {"id": tid, "warnings": warnings} for tid, warnings in submission.warnings.items()
            ],
        }
        return Response(body)


class BankFeedPushListApi(ApiView):
    @extend_schema(
        operation_id="bank_feed_pushes_list",
        parameters=[COMPANY_ID, ACCOUNT_ID],
        responses=BankFeedPushOutput(many=True),
        description=(
            "The account's pushes to Codat, newest first, with their outcome: `sending` and "
            "`pending` until Codat says `success`, `failed` or `timed_out` (`refused`: it never "
            "reached Codat). Codat writes nothing of a failed or timed-out push: its "
            "transactions wait again, and are set aside after three such answers."
        ),
    )
    def get(self, request, company_id, account_id):
        account = source_account_or_404(company_or_404(company_id), account_id)
        pushes = bankfeed_selectors.account_push_list(account=account)
        return self.paginated(pushes, BankFeedPushOutput)


# -- operations and jobs ----------------------------------------------------------------------


class OperationListApi(ApiView):
    class FilterSerializer(serializers.Serializer):
        company = serializers.UUIDField(required=False, help_text="A company's Codat id.")
        state = serializers.ChoiceField(choices=OperationState.choices, required=False)
        kind = serializers.ChoiceField(choices=OperationKind.choices, required=False)
        job = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        operation_id="operations_list",
        parameters=[FilterSerializer],
        responses=OperationOutput(many=True),
    )
    def get(self, request):
        filters = _filters(self.FilterSerializer, request)
        if "company" in filters:
            filters["company"] = selectors.company_get(codat_id=filters["company"])
            if filters["company"] is None:
                raise unprocessable("company", "No company with this id.")
        if "job" in filters:
            filters["job"] = Job.objects.filter(pk=filters["job"]).first()
            if filters["job"] is None:
                raise unprocessable("job", "No job with this id.")
        return self.paginated(selectors.operation_list(**filters), OperationOutput)


class OperationDetailApi(ApiView):
    @extend_schema(
        operation_id="operations_retrieve",
        parameters=[OpenApiParameter("operation_id", str, OpenApiParameter.PATH)],
        responses=OperationOutput,
    )
    def get(self, request, operation_id):
        pk = _int_or_404(operation_id, "operation")
        operation = selectors.operation_list().filter(pk=pk).first()
        if operation is None:
            raise exceptions.NotFound(f"No operation with id {operation_id!r}.")
        return Response(OperationOutput(operation).data)


def job_or_404(job_id: str) -> Job:
    job = selectors.job_list().filter(pk=_int_or_404(job_id, "job")).first()
    if job is None:
        raise exceptions.NotFound(f"No job with id {job_id!r}.")
    return job


JOB_ID = OpenApiParameter("job_id", str, OpenApiParameter.PATH)


class JobListApi(ApiView):
    @extend_schema(operation_id="jobs_list", responses=JobOutput(many=True))
    def get(self, request):
        return self.paginated(selectors.job_list(), JobOutput)


class JobDetailOutput(JobOutput):
    progress = serializers.DictField(read_only=True)
    failures = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta(JobOutput.Meta):
        fields = (*JobOutput.Meta.fields, "progress", "failures")


def _job_body(job: Job) -> dict:
    body = JobOutput(job).data
    body["progress"] = job_progress(job=job)
    body["failures"] = [
        {
            "operation": operation.pk,
            "company": str(operation.company.codat_id) if operation.company_id else None,
            "reason": operation.last_error,
            "status": operation.last_error_status,
        }
        for operation in job_failures(job=job)
    ]
    return body


class JobDetailApi(ApiView):
    @extend_schema(
        operation_id="jobs_retrieve",
        parameters=[JOB_ID],
        responses=JobDetailOutput,
        description="Progress by state and Codat's reason for each failed row (first 200).",
    )
    def get(self, request, job_id):
        return Response(_job_body(job_or_404(job_id)))


class JobRetryFailedApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema(
        operation_id="jobs_retry_failed",
        parameters=[JOB_ID],
        request=None,
        responses={202: JobDetailOutput},
    )
    @idempotent
    def post(self, request, job_id):
        job = job_or_404(job_id)
        job_retry_failed(job=job, requested_by=request.user)
        return Response(_job_body(job), status=status.HTTP_202_ACCEPTED)


class JobCancelRestApi(ApiView):
    scopes = {"POST": SCOPE_OPERATE}

    @extend_schema(
        operation_id="jobs_cancel_rest",
        parameters=[JOB_ID],
        request=None,
        responses={200: JobDetailOutput},
    )
    @idempotent
    def post(self, request, job_id):
        job = job_or_404(job_id)
        job_cancel_rest(job=job)
        job.refresh_from_db()
        return Response(_job_body(job))


# -- webhook ledger ---------------------------------------------------------------------------


class WebhookEventListApi(ApiView):
    class FilterSerializer(serializers.Serializer):
        event_type = serializers.CharField(required=False, max_length=200)
        state = serializers.ChoiceField(choices=EventState.choices, required=False)
        company = serializers.UUIDField(required=False, help_text="A company's Codat id.")

    @extend_schema(
        operation_id="webhook_events_list",
        parameters=[FilterSerializer],
        responses=WebhookEventOutput(many=True),
    )
    def get(self, request):
        filters = _filters(self.FilterSerializer, request)
        events = selectors.webhook_event_list(
            event_type=filters.get("event_type", ""), state=filters.get("state", "")
        )
        if "company" in filters:
            events = events.filter(company_codat_id=filters["company"])
        return self.paginated(events, WebhookEventOutput)


class WebhookEventDetailApi(ApiView):
    @extend_schema(
        operation_id="webhook_events_retrieve",
        parameters=[OpenApiParameter("event_id", str, OpenApiParameter.PATH)],
        responses=WebhookEventDetailOutput,
    )
    def get(self, request, event_id):
        pk = _int_or_404(event_id, "webhook event")
        event = WebhookEvent.objects.filter(pk=pk).first()
        if event is None:
            raise exceptions.NotFound(f"No webhook event with id {event_id!r}.")
        return Response(WebhookEventDetailOutput(event).data)


# -- product catalogue ------------------------------------------------------------------------


class ProductListApi(ApiView):
    scopes = {"GET": SCOPE_READ, "POST": SCOPE_CATALOGUE}

    @extend_schema_serializer(component_name="ProductDefineInput")
    class InputSerializer(serializers.Serializer):
        identifier = serializers.SlugField(max_length=64)
        name = serializers.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=ProductKind.choices)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        schedule_kind = serializers.ChoiceField(
            choices=ScheduleKind.choices, required=False, default=ScheduleKind.NONE
        )
        schedule_time = DailyTimeField(
            required=False, allow_null=True, default=None, help_text="HH:MM UTC; daily only."
        )
        data_types = serializers.ListField(
            child=serializers.ChoiceField(choices=ALL_DATA_TYPES),
            min_length=1,
            max_length=len(ALL_DATA_TYPES),
        )
        optional_data_types = serializers.ListField(
            child=serializers.ChoiceField(choices=ALL_DATA_TYPES),
            required=False,
            default=list,
            max_length=len(ALL_DATA_TYPES),
        )

        def validate(self, data):
            if (data["schedule_kind"] == ScheduleKind.DAILY) != (data["schedule_time"] is not None):
                raise serializers.ValidationError(
                    {"schedule_time": "Give a time for a daily schedule, and only for one."},
                    code=UNPROCESSABLE,
                )
            if not set(data["optional_data_types"]) <= set(data["data_types"]):
                raise serializers.ValidationError(
                    {"optional_data_types": "Each optional data type must be in data_types."},
                    code=UNPROCESSABLE,
                )
            return data

    @extend_schema(operation_id="products_list", responses=ProductOutput(many=True))
    def get(self, request):
        return self.paginated(selectors.product_list(), ProductOutput)

    @extend_schema(
        operation_id="products_define",
        request=InputSerializer,
        responses={200: ProductOutput},
        description="Create or update a product and set exactly its data types (admins).",
    )
    @idempotent
    def post(self, request):
        data = _input(self.InputSerializer, request)
        product = product_define(
            identifier=data["identifier"],
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            schedule_kind=data["schedule_kind"],
            schedule_time=data["schedule_time"],
            data_types=sorted(set(data["data_types"])),
            optional_data_types=tuple(data["optional_data_types"]),
        )
        return Response(ProductOutput(selectors.product_list().get(pk=product.pk)).data)


class ProductDetailApi(ApiView):
    @extend_schema(operation_id="products_retrieve", parameters=[PRODUCT], responses=ProductOutput)
    def get(self, request, product):
        found = (
            selectors.product_list().filter(identifier=product).first()
            if _is_slug(product)
            else None
        )
        if found is None:
            raise exceptions.NotFound(f"No product {product!r} in the catalogue.")
        return Response(ProductOutput(found).data)
