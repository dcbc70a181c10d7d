import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_mixins import ReadOnlyMirrorAdmin
from webhooks.consumers import (
    event_type_choices,
    webhook_consumer_delete,
    webhook_consumer_disable,
    webhook_consumer_register,
)
from webhooks.models import (
    BankFeedSourceAccount,
    ConsumerStatus,
    WebhookConsumer,
    WebhookEvent,
    WriteOutcome,
)
from webhooks.services import pretty_body, webhook_events_replay


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMirrorAdmin):
    """The ledger: every delivery Codat made, once per webhook id, and the gaps found later."""

    list_display = (
        "received_at",
        "event_type",
        "state",
        "company",
        "generated_at",
        "webhook_id",
        "times_processed",
    )
    list_filter = (
        "state",
        "event_type",
        ("company", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("company",)
    search_fields = ("=webhook_id", "=event_id", "=company_codat_id", "company__name")
    date_hierarchy = "received_at"
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


class WebhookConsumerForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=(), widget=forms.CheckboxSelectMultiple, help_text="Events Codat should send."
    )
    company_tags = forms.CharField(
        required=False,
        help_text="Optional, comma-separated key:value tags; any one match delivers.",
    )

    class Meta:
        model = WebhookConsumer
        fields = ("url", "event_types", "disabled", "company_tags")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = event_type_choices()

    def clean_company_tags(self):
        tags = [tag.strip() for tag in self.cleaned_data["company_tags"].split(",") if tag.strip()]
        if len(tags) > 10:
            raise forms.ValidationError("Codat allows at most 10 company tags.")
        for tag in tags:
            if ":" not in tag or len(tag) > 128:
                raise forms.ValidationError(f"{tag!r} is not a key:value tag of 128 characters.")
        return tags


@admin.register(WebhookConsumer)
class WebhookConsumerAdmin(admin.ModelAdmin):
    list_display = ("url", "event_list", "disabled", "status", "codat_id", "status_changed_at")
    list_filter = ("status", "disabled")
    readonly_fields = ("status", "codat_id", "last_error", "attempts", "created_at")
    actions = ("disable_at_codat", "delete_at_codat")
    form = WebhookConsumerForm

    @admin.display(description="event types")
    def event_list(self, consumer):
        return ", ".join(consumer.event_types)

    def get_changeform_initial_data(self, request):
        return {"url": request.build_absolute_uri(reverse("webhooks:codat"))}

    def get_urls(self):
        import_view = self.admin_site.admin_view(self.import_from_codat)
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
        """List the consumers at Codat (from a worker) and add the ones the portal lacks."""
        if request.method != "POST" or not self.has_manage_consumers_permission(request):
            raise PermissionDenied
        from webhooks.tasks import import_webhook_consumers_task

        import_webhook_consumers_task.delay()
        self.message_user(request, "Listing the consumers at Codat; refresh this page in a moment.")
        return redirect("admin:webhooks_webhookconsumer_changelist")

    def has_add_permission(self, request):
        return request.user.has_perm("webhooks.manage_consumers")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_consumers_permission(self, request):
        return request.user.has_perm("webhooks.manage_consumers")

    def save_model(self, request, obj, form, change):
        consumer = webhook_consumer_register(
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            disabled=form.cleaned_data["disabled"],
            company_tags=form.cleaned_data["company_tags"],
        )
        form.instance = obj = consumer
        obj.pk = consumer.pk
        self.message_user(
            request,
            "Registration at Codat is under way. Codat does not return the signing secret: copy "
            "it from Codat's Portal into CODAT_WEBHOOK_SECRETS (comma-separated, keep the old "
            "one until Codat signs with the new one).",
            messages.WARNING,
        )

    @admin.action(description="Disable at Codat", permissions=("manage_consumers",))
    def disable_at_codat(self, request, queryset):
        replaced = [webhook_consumer_disable(consumer=consumer) for consumer in queryset]
        count = sum(1 for copy in replaced if copy is not None)
        self.message_user(
            request,
            f"{count} consumer(s) being replaced by a disabled copy (Codat cannot edit one).",
        )

    @admin.action(description="Delete at Codat", permissions=("manage_consumers",))
    def delete_at_codat(self, request, queryset):
        for consumer in queryset.exclude(status=ConsumerStatus.DELETED):
            webhook_consumer_delete(consumer=consumer)
        self.message_user(request, "Deletion at Codat is under way.")


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
