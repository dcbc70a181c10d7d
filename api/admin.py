"""API keys in the admin: made here (the key is shown once, on the page after saving),
revoked with an action, never edited beyond their name."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from core.roles import API_SCOPES


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=list(API_SCOPES.items()), widget=forms.CheckboxSelectMultiple
    )
    expires_at = forms.DateTimeField(
        required=False, help_text="UTC. Left empty: the default lifetime (API_KEY_DEFAULT_DAYS)."
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "scope_list",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_select_related = ("created_by",)
    search_fields = ("name", "prefix")
    readonly_fields = (
        "prefix",
        "scopes",
        "user",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    actions = ("revoke",)

    @admin.display(description="scopes")
    def scope_list(self, key):
        return ", ".join(key.scopes)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes", "expires_at")
        return ("name", *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        try:
            key, raw = api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data.get("expires_at"),
                created_by=request.user,
            )
        except ValidationError as error:
            raise forms.ValidationError(error) from error
        obj.pk = key.pk
        # Shown once, on the page response_add renders: never in a message (they may be kept
        # in a cookie) nor anywhere else.
        request.api_key_raw = raw

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/api/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "key": ApiKey.objects.get(pk=obj.pk),
                "raw_key": request.api_key_raw,
                "title": "API key created",
            },
        )

    def has_delete_permission(self, request, obj=None):
        return False  # the records a key wrote keep naming it: revoke instead

    @admin.action(description="Revoke the selected API keys", permissions=("change",))
    def revoke(self, request, queryset):
        revoked = sum(api_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
