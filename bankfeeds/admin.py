"""Bank feeds in the admin: onboarding, source accounts, a CSV upload of transactions, and what
synced (transactions with their state, pushes with their outcome, each account's mapping).

Every change goes through bankfeeds/services.py; the rows here are read-only otherwise.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from bankfeeds import selectors, services
from bankfeeds.forms import OnboardForm, SourceAccountForm, TransactionsCsvForm
from bankfeeds.models import (
    BankFeedConnection,
    BankFeedPush,
    BankTransaction,
    SourceAccount,
    TransactionState,
)
from bankfeeds.rules import BankFeedInvalid
from companies.models import Company
from core.admin_mixins import (
    FoldedInline,
    ReadOnlyInline,
    ReadOnlyMirrorAdmin,
    admin_object_or_404,
    admin_view_context,
    shortened,
)
from core.roles import can_run_operations
from operations.services import OperationRefused


def _operation_link(operation) -> str:
    return format_html(
        '<a href="{}">operation #{}</a>',
        reverse("admin:operations_operation_change", args=(operation.pk,)),
        operation.pk,
    )


class BankFeedAdmin(ReadOnlyMirrorAdmin):
    """Read-only rows; operators (core.roles) run the services behind the forms and actions."""

    def has_run_operations_permission(self, request):
        return can_run_operations(request.user)


class SourceAccountInline(ReadOnlyInline):
    model = SourceAccount
    fields = (
        "account_name",
        "account_id",
        "currency",
        "state",
        "mapping_status",
        "feed_start_date",
    )
    readonly_fields = fields


@admin.register(BankFeedConnection)
class BankFeedConnectionAdmin(BankFeedAdmin):
    list_display = ("__str__", "platform", "state", "codat_id", "link", "created_at")
    list_filter = ("platform", "state")
    list_select_related = ("company",)
    search_fields = ("company__name", "=codat_id")
    readonly_fields = (
        "company",
        "platform",
        "state",
        "codat_id",
        "link_url",
        "link_url_fetched_at",
        "last_error",
        "created_at",
        "mapping_page",
    )
    inlines = (SourceAccountInline,)
    actions = ("refresh_link", "read_mapping")

    @admin.display(description="SMB link")
    def link(self, obj):
        if not obj.link_url:
            return "—"
        return format_html(
            '<a href="{}" rel="noreferrer">{}</a>', obj.link_url, shortened(obj.link_url, 40)
        )

    @admin.display(description="SMB mapping page")
    def mapping_page(self, obj):
        if obj.codat_id is None:
            return "—"
        url = settings.CONSENT_BASE_URL.rstrip("/") + services.mapping_link_path(connection=obj)
        return format_html(
            "<code>{}</code><br>Send this to the business; it works for {} days.",
            url,
            settings.BANK_FEEDS_MAPPING_LINK_DAYS,
        )

    def has_add_permission(self, request):
        return can_run_operations(request.user)

    def add_view(self, request, form_url="", extra_context=None):
        """Onboarding: a new company (created at Codat, then its connection) or an existing
        one, connected to a bank-feeds platform."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OnboardForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["company_name"]:
                    operation = services.bank_feed_company_onboard(
                        name=data["company_name"],
                        platform=data["platform"],
                        requested_by=request.user,
                    )
                    self.message_user(
                        request,
                        format_html(
                            "Creating the company at Codat ({}); its bank-feed connection follows.",
                            _operation_link(operation),
                        ),
                    )
                else:
                    company = Company.objects.filter(codat_id=data["company_codat_id"]).first()
                    if company is None:
                        raise BankFeedInvalid("company", "no company with this Codat id")
                    services.bank_feed_connection_create(
                        company=company, platform=data["platform"], requested_by=request.user
                    )
                    self.message_user(request, "Creating the bank-feed connection at Codat.")
                return redirect("admin:bankfeeds_bankfeedconnection_changelist")
            except (BankFeedInvalid, OperationRefused) as error:
                form.add_error(None, str(error))
        context = admin_view_context(
            request,
            self,
            title="Onboard a company for bank feeds",
            form=form,
            submit_label="Onboard",
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    @admin.action(
        description="Get a fresh SMB link (QuickBooks Online's lasts an hour)",
        permissions=("run_operations",),
    )
    def refresh_link(self, request, queryset):
        self._each(request, queryset, services.bank_feed_link_refresh, "Reading the link again")

    @admin.action(
        description="Read the account mapping from Codat", permissions=("run_operations",)
    )
    def read_mapping(self, request, queryset):
        self._each(request, queryset, services.bank_feed_mapping_read, "Reading the mapping")

    def _each(self, request, queryset, service, done: str):
        count = 0
        for connection in queryset.select_related("company"):
            try:
                service(connection=connection, requested_by=request.user)
                count += 1
            except OperationRefused as error:
                self.message_user(request, f"{connection}: {error}", messages.WARNING)
        if count:
            self.message_user(request, f"{done} for {count} connection(s).")


class PushInline(FoldedInline):
    model = BankFeedPush
    fields = (
        "created_at",
        "status",
        "transaction_count",
        "first_date",
        "last_date",
        "push_operation_key",
        "error",
    )
    readonly_fields = fields
    row_limit = 20
    hidden_rows_text = "%(count)s older pushes not shown."

    def see_all_url(self, obj):
        return reverse("admin:bankfeeds_bankfeedpush_changelist") + f"?account__id__exact={obj.pk}"


@admin.register(SourceAccount)
class SourceAccountAdmin(BankFeedAdmin):
    list_display = (
        "account_name",
        "company",
        "account_id",
        "currency",
        "state",
        "mapping_status",
        "waiting",
        "in_push",
        "synced",
        "set_aside",
        "latest_synced",
    )
    list_filter = ("state", "mapping_status", "connection__platform")
    search_fields = ("account_name", "=account_id", "connection__company__name")
    readonly_fields = (
        "connection",
        "account_id",
        "account_name",
        "account_type",
        "account_number",
        "sort_code",
        "currency",
        "balance",
        "state",
        "last_error",
        "mapping_status",
        "target_account_name",
        "feed_start_date",
        "mapping_error",
        "mapping_observed_at",
        "transaction_states",
    )
    # Only these, in this order: the raw JSON of Codat's target options and routing details
    # would sit at the top in codes, and the mapping's words say the same.
    fields = readonly_fields
    inlines = (PushInline,)
    actions = ("delete_at_codat",)
    change_form_template = "admin/bankfeeds/sourceaccount/change_form.html"

    def get_queryset(self, request):
        return selectors.accounts_with_progress()

    @admin.display(description="company", ordering="connection__company__name")
    def company(self, obj):
        return obj.connection.company.name

    @admin.display(description="waiting")
    def waiting(self, obj):
        return obj.waiting_count

    @admin.display(description="in a push")
    def in_push(self, obj):
        return obj.in_push_count

    @admin.display(description="synced")
    def synced(self, obj):
        return obj.synced_count

    @admin.display(description="set aside")
    def set_aside(self, obj):
        return obj.set_aside_count

    @admin.display(description="latest synced")
    def latest_synced(self, obj):
        return obj.latest_synced or "—"

    @admin.display(description="transactions")
    def transaction_states(self, obj):
        counts = selectors.account_transaction_counts(account=obj)
        base = reverse("admin:bankfeeds_banktransaction_changelist")
        return format_html_join(
            " · ",
            '<a href="{}?account__id__exact={}&amp;state__exact={}">{}: {}</a>',
            (
                (base, obj.pk, state, TransactionState(state).label, f"{count:,}")
                for state, count in counts.items()
            ),
        )

    def has_add_permission(self, request):
        return can_run_operations(request.user)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/upload-transactions/",
                self.admin_site.admin_view(self.upload_view),
                name="bankfeeds_sourceaccount_upload",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SourceAccountForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                account = services.source_account_create(
                    connection=form.cleaned_data["connection"],
                    data=form.codat_fields(),
                    requested_by=request.user,
                )
                self.message_user(request, f"Creating {account} at Codat.")
                return redirect("admin:bankfeeds_sourceaccount_change", account.pk)
            except BankFeedInvalid as error:
                if error.field in form.fields:
                    form.add_error(error.field, error.reason)
                else:
                    form.add_error(None, str(error))
            except OperationRefused as error:
                form.add_error(None, str(error))
        context = admin_view_context(
            request,
            self,
            title="Create a bank-feed source account",
            form=form,
            submit_label="Create",
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def upload_view(self, request, object_id):
        if not can_run_operations(request.user):
            raise PermissionDenied
        account = admin_object_or_404(SourceAccount.objects.select_related("connection"), object_id)
        form = TransactionsCsvForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = services.transactions_submit(
                    account=account, rows=form.cleaned_data["file"]
                )
            except (BankFeedInvalid, services.TransactionConflict, OperationRefused) as error:
                # Rows are numbered as in the file: the header is line 1.
                form.add_error(None, f"Nothing was stored. {error}")
            else:
                self.message_user(
                    request,
                    f"{result.created:,} transaction(s) stored, {result.unchanged:,} already"
                    f" stored unchanged; {len(result.warnings):,} with a warning.",
                )
                return redirect("admin:bankfeeds_sourceaccount_change", account.pk)
        context = admin_view_context(
            request,
            self,
            title=f"Upload transactions for {account}",
            form=form,
            submit_label="Upload",
            intro="Each transaction is stored once under its id; a file with errors stores"
            " nothing.",
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    @admin.action(description="Delete at Codat (stops the feed)", permissions=("run_operations",))
    def delete_at_codat(self, request, queryset):
        for account in queryset:
            services.source_account_delete(account=account, requested_by=request.user)
        self.message_user(request, "Deletion at Codat is under way.")


@admin.register(BankTransaction)
class BankTransactionAdmin(BankFeedAdmin):
    list_display = (
        "transaction_id",
        "account",
        "date",
        "amount",
        "transaction_type",
        "state",
        "reason",
        "push",
    )
    list_filter = ("state", "account__connection__platform")
    list_select_related = ("account", "push")
    search_fields = ("=transaction_id", "account__account_name", "=account__account_id")
    date_hierarchy = "date"
    actions = ("requeue",)

    @admin.display(description="set aside because")
    def reason(self, obj):
        return shortened(obj.set_aside_reason, 60)

    @admin.action(description="Put back in the queue", permissions=("run_operations",))
    def requeue(self, request, queryset):
        count = services.transactions_requeue(
            transaction_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"{count} set-aside transaction(s) back in the queue.")


class PushTransactionInline(ReadOnlyInline):
    model = BankTransaction
    fields = ("transaction_id", "date", "amount", "state")
    readonly_fields = fields
    show_change_link = False


@admin.register(BankFeedPush)
class BankFeedPushAdmin(BankFeedAdmin):
    list_display = (
        "__str__",
        "account",
        "status",
        "transaction_count",
        "first_date",
        "last_date",
        "created_at",
        "completed_at",
    )
    list_filter = ("status",)
    list_select_related = ("account",)
    search_fields = ("=push_operation_key", "account__account_name")
