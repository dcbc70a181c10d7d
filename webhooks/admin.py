import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from approvals.models import ApprovalAction
from approvals.services import (
    consumer_change_request,
    consumer_changes_need_approval,
    consumer_register_request,
)
from companies.models import Company
from core.admin_mixins import (
    ADMIN_LAYOUT_CSS,
    ChosenRowListFilter,
    ReadOnlyMirrorAdmin,
    admin_view_context,
    shortened,
)
from webhooks.consumers import (
    event_type_choices,
    webhook_consumer_delete,
    webhook_consumer_disable,
    webhook_consumer_register,
    webhook_consumers_list_request,
)
from webhooks.forms import WebhookConsumerForm
from webhooks.models import (
    BankFeedSourceAccount,
    ConsumerStatus,
    WebhookConsumer,
    WebhookEvent,
    WriteOutcome,
)
from webhooks.services import pretty_body, webhook_events_replay


class EventTypeListFilter(admin.SimpleListFilter):
    """The event types the portal subscribes to, from the catalogue, not a DISTINCT over the
    whole ledger; other types are found with the state filter ("Unknown event type")."""

    title = "event type"
    parameter_name = "event_type__exact"

    def lookups(self, request, model_admin):
        return event_type_choices()

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(event_type=self.value())


class CompanyOfEventListFilter(ChosenRowListFilter):
    title = "company (search by name to find one)"
    parameter_name = "company__id__exact"
    related_model = Company


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMirrorAdmin):
    """The ledger: every delivery Codat made, once per webhook id, and the gaps found later."""

    # Six columns fit beside the navigation and the filters at 1440 px; the generation time,
    # the full webhook id and the rest are on each event's page.
    list_display = (
        "received_at",
        "event_type_cell",
        "state",
        "company",
        "short_webhook_id",
        "processed_count",
    )
    # No date_hierarchy: it reads the whole ledger for its years and months before the page.
    list_filter = (
        "state",
        EventTypeListFilter,
        ("received_at", admin.DateFieldListFilter),
        CompanyOfEventListFilter,
    )
    list_select_related = ("company",)
    search_fields = ("=webhook_id", "=event_id", "=company_codat_id", "company__name")
    actions = ("replay",)
    fields = (
        "webhook_id",
        "event_id",
        "event_type",
        "state",
        "state_reason",
        "last_error",
        "company",
        "company_codat_id",
        "generated_at",
        "signed_at",
        "received_at",
        "processed_at",
        "times_processed",
        "delivery_headers",
        "raw_body",
        "formatted_body",
    )
    readonly_fields = fields

    class Media:
        css = ADMIN_LAYOUT_CSS

    @admin.display(description="event type", ordering="event_type")
    def event_type_cell(self, event):
        # A line break may fall after each dot: "bankFeeds.sourceAccount.connected" wraps
        # between its words instead of widening the list.
        parts = ((part,) for part in event.event_type.split("."))
        return format_html_join(mark_safe(".<wbr>"), "{}", parts)

    @admin.display(description="webhook id", ordering="webhook_id")
    def short_webhook_id(self, event):
        return shortened(event.webhook_id, 12)

    @admin.display(description="runs", ordering="times_processed")
    def processed_count(self, event):
        return event.times_processed

    @admin.display(description="raw body (as signed)")
    def raw_body(self, event):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", event.body)

    @admin.display(description="body, formatted")
    def formatted_body(self, event):
        return format_html("<pre>{}</pre>", pretty_body(event))

    @admin.display(description="headers")
    def delivery_headers(self, event):
        # Only the headers kept at receipt are here; Authorization and cookies never are.
        return format_html("<pre>{}</pre>", json.dumps(event.headers, indent=2, sort_keys=True))

    @admin.action(description="Replay through the handlers", permissions=("replay",))
    def replay(self, request, queryset):
        counts = webhook_events_replay(event_pks=list(queryset.values_list("pk", flat=True)))
        summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
        self.message_user(request, f"Replayed: {summary or 'nothing'}.", messages.SUCCESS)

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.replay_event")


@admin.register(WebhookConsumer)
class WebhookConsumerAdmin(admin.ModelAdmin):
    list_display = ("url", "event_list", "disabled", "status", "codat_id", "status_changed_at")
    list_filter = ("status", "disabled")
    readonly_fields = ("status", "codat_id", "last_error", "created_at")
    actions = ("disable_at_codat", "delete_at_codat")

    @admin.display(description="event types")
    def event_list(self, consumer):
        return ", ".join(consumer.event_types)

    def get_urls(self):
        import_view = self.admin_site.admin_view(require_POST(self.import_from_codat))
        return [
            path("import-from-codat/", import_view, name="webhooks_webhookconsumer_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import_consumers": self.has_manage_consumers_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_from_codat(self, request):
        """List the consumers at Codat (an operation row) and add the ones the portal lacks."""
        if not self.has_manage_consumers_permission(request):
            raise PermissionDenied
        operation = webhook_consumers_list_request()
        # A worker runs the row, usually within seconds; its page says when it has and how.
        self.message_user(
            request,
            format_html(
                'Asked Codat for its webhook consumers (<a href="{}">operation #{}</a>). Once a '
                "worker has run it, usually within seconds, consumers the portal lacks are in "
                "this list; reload it then.",
                reverse("admin:operations_operation_change", args=(operation.pk,)),
                operation.pk,
            ),
        )
        return redirect("admin:webhooks_webhookconsumer_changelist")

    def has_add_permission(self, request):
        return request.user.has_perm("webhooks.manage_consumers")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_consumers_permission(self, request):
        return request.user.has_perm("webhooks.manage_consumers")

    def add_view(self, request, form_url="", extra_context=None):
        """Registration goes through the service, which writes the row and its operation."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"url": request.build_absolute_uri(reverse("webhooks:codat"))}
        form = WebhookConsumerForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            if consumer_changes_need_approval():
                approval = consumer_register_request(maker=request.user, **form.cleaned_data)
                self.message_user(
                    request, f"{approval.summary}: waits for a second person.", messages.WARNING
                )
                return redirect("admin:approvals_approvalrequest_change", approval.pk)
            consumer = webhook_consumer_register(**form.cleaned_data, requested_by=request.user)
            self.log_addition(request, consumer, [{"added": {}}])
            self.message_user(
                request,
                "Registration at Codat is under way. Codat does not return the signing secret: "
                "copy it from Codat's Portal into CODAT_WEBHOOK_SECRETS (comma-separated, keep "
                "the old one until Codat signs with the new one).",
                messages.WARNING,
            )
            return redirect("admin:webhooks_webhookconsumer_changelist")
        context = admin_view_context(
            request, self, title="Register a webhook consumer at Codat", form=form
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    @admin.action(description="Disable at Codat", permissions=("manage_consumers",))
    def disable_at_codat(self, request, queryset):
        if consumer_changes_need_approval():
            return self._request_approvals(request, queryset, ApprovalAction.CONSUMER_DISABLE)
        replaced = [
            webhook_consumer_disable(consumer=consumer, requested_by=request.user)
            for consumer in queryset
        ]
        count = sum(1 for copy in replaced if copy is not None)
        self.message_user(
            request,
            f"{count} consumer(s) being replaced by a disabled copy (Codat cannot edit one).",
        )

    @admin.action(description="Delete at Codat", permissions=("manage_consumers",))
    def delete_at_codat(self, request, queryset):
        if consumer_changes_need_approval():
            return self._request_approvals(request, queryset, ApprovalAction.CONSUMER_DELETE)
        for consumer in queryset.exclude(status=ConsumerStatus.DELETED):
            webhook_consumer_delete(consumer=consumer, requested_by=request.user)
        self.message_user(request, "Deletion at Codat is under way.")

    def _request_approvals(self, request, queryset, action):
        for consumer in queryset.exclude(status=ConsumerStatus.DELETED):
            consumer_change_request(maker=request.user, consumer=consumer, action=action)
        self.message_user(
            request,
            "Consumer changes wait for a second person: see the pending approvals.",
            messages.WARNING,
        )


@admin.register(WriteOutcome)
class WriteOutcomeAdmin(ReadOnlyMirrorAdmin):
    list_display = ("data_type", "operation_type", "status", "company", "completed_at")
    list_filter = ("status", "operation_type", "data_type")
    list_select_related = ("company",)
    search_fields = ("=push_operation_key", "company__name", "record_id")


@admin.register(BankFeedSourceAccount)
class BankFeedSourceAccountAdmin(ReadOnlyMirrorAdmin):
    list_display = ("account_name", "company", "feed_connected", "reported_status", "currency")
    list_filter = ("feed_connected", "reported_status")
    list_select_related = ("company",)
    search_fields = ("account_name", "=account_id", "company__name")
