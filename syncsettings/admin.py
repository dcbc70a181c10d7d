"""The sync settings page: the client's settings as Codat holds them, the companies by mode,
the companies' own settings and each custom product's schedule; a read from Codat for
operators, and the edit form for admins (a set operation)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from core.admin_mixins import admin_view_context
from core.roles import can_change_sync_settings, can_run_operations
from syncsettings import selectors, services
from syncsettings.forms import OverridesDefaultsForm, SyncSettingForm, SyncSettingFormSet
from syncsettings.models import ClientSyncSettings
from syncsettings.validation import SyncSettingsInvalid


@admin.register(ClientSyncSettings)
class SyncSettingsAdmin(admin.ModelAdmin):
    """One page rather than a list: there is one client."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Changes go to Codat as an operation, through the edit form (admins only).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        wrap = self.admin_site.admin_view
        return [
            path("read/", wrap(self.read_view), name="{}_{}_read".format(*info)),
            path("edit/", wrap(self.edit_view), name="{}_{}_edit".format(*info)),
            *super().get_urls(),
        ]

    def _page_url(self) -> str:
        return reverse("admin:syncsettings_clientsyncsettings_changelist")

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        page = selectors.sync_settings_page()
        companies_url = reverse("admin:companies_company_changelist")
        context = admin_view_context(
            request,
            self,
            title="Sync settings",
            **page,
            mode_links=[
                (kind, count, f"{companies_url}?{urlencode({'sync_mode': kind.value})}")
                for kind, count in page["mode_counts"]
            ],
            can_read=can_run_operations(request.user),
            can_edit=can_change_sync_settings(request.user),
            read_url=reverse("admin:syncsettings_clientsyncsettings_read"),
            edit_url=reverse("admin:syncsettings_clientsyncsettings_edit"),
        )
        return TemplateResponse(request, "admin/syncsettings/page.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The one row has no page of its own: the sync settings page shows it. Any other id
        # names nothing.
        if object_id == "1" and self.has_view_permission(request):
            return HttpResponseRedirect(self._page_url())
        raise Http404("No such sync settings.")

    def read_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_run_operations(request.user):
            raise PermissionDenied
        operation = services.client_sync_settings_read_request(requested_by=request.user)
        self.message_user(
            request,
            f"Reading the sync settings from Codat (operation {operation.pk}); "
            "reload this page in a moment.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._page_url())

    def edit_view(self, request):
        if not can_change_sync_settings(request.user):
            raise PermissionDenied
        client = selectors.client_sync_settings_get()
        if client is None:
            self.message_user(
                request,
                "Read the settings from Codat first: the form edits what Codat holds.",
                messages.WARNING,
            )
            return HttpResponseRedirect(self._page_url())
        originals = {s["dataType"]: s for s in client.settings}
        ordered = sorted(client.settings, key=lambda s: (s.get("syncOrder", 0), s["dataType"]))
        error = ""
        if request.method == "POST":
            formset = SyncSettingFormSet(request.POST)
            flag = OverridesDefaultsForm(request.POST)
            if formset.is_valid() and flag.is_valid():
                unknown = [
                    f.cleaned_data["data_type"]
                    for f in formset
                    if f.cleaned_data["data_type"] not in originals
                ]
                try:
                    if unknown:
                        raise SyncSettingsInvalid(f"{unknown[0]}", "is not in Codat's settings")
                    operation = services.client_sync_settings_set_request(
                        settings=[
                            form.setting(originals[form.cleaned_data["data_type"]])
                            for form in formset
                        ],
                        overrides_defaults=flag.cleaned_data["overrides_defaults"],
                        requested_by=request.user,
                    )
                except SyncSettingsInvalid as invalid:
                    error = str(invalid)
                else:
                    self.message_user(
                        request,
                        f"Sending the new sync settings to Codat (operation {operation.pk}); "
                        "this page shows them once Codat has accepted them.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(self._page_url())
        else:
            formset = SyncSettingFormSet(
                initial=[SyncSettingForm.initial_of(setting) for setting in ordered]
            )
            flag = OverridesDefaultsForm(initial={"overrides_defaults": client.overrides_defaults})
        names = {row.data_type: row.name for row in selectors.setting_rows(client.settings)}
        context = admin_view_context(
            request,
            self,
            title="Edit the client's sync settings",
            formset=formset,
            rows=[
                (form, names.get(form["data_type"].value(), form["data_type"].value()))
                for form in formset
            ],
            flag=flag,
            error=error,
            page_url=self._page_url(),
        )
        return TemplateResponse(request, "admin/syncsettings/edit.html", context)
