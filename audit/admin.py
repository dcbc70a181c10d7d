import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from audit.company_export import company_data_export
from audit.models import AuditEntry
from audit.selectors import audit_entries_csv_lines
from audit.services import audit_record
from companies.erasure import ErasureRefused
from companies.models import Company, CompanyErasure
from core.admin_mixins import ReadOnlyMirrorAdmin, admin_view_context
from core.roles import can_erase_companies, can_export_company_data


class CompanyEraseForm(forms.Form):
    """Typing the Codat id is the confirmation: erasure cannot be undone."""

    codat_id = forms.CharField(
        label="Codat id of the company",
        help_text="Type the company's Codat id to confirm.",
    )

    def __init__(self, *args, company: Company, **kwargs):
        super().__init__(*args, **kwargs)
        self.company = company

    def clean_codat_id(self):
        typed = self.cleaned_data["codat_id"].strip().lower()
        if typed != str(self.company.codat_id):
            raise forms.ValidationError("This is not the Codat id of this company.")
        return typed


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyMirrorAdmin):
    """The trail, searchable and filterable; nobody edits it (the database refuses too)."""

    change_list_template = "admin/audit/auditentry/change_list.html"
    list_display = ("at", "actor", "via", "ip", "action", "target_type", "target")
    list_filter = ("via", "action", "target_type")
    search_fields = ("actor", "action", "target", "target_id", "ip", "api_key")
    date_hierarchy = "at"
    readonly_fields = tuple(field.name for field in AuditEntry._meta.fields)

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_csv_view),
                name="audit_auditentry_export",
            ),
            path(
                "company-export/<int:company_id>/",
                self.admin_site.admin_view(self.company_export_view),
                name="audit_company_export",
            ),
            path(
                "company-erase/<int:company_id>/",
                self.admin_site.admin_view(self.company_erase_view),
                name="audit_company_erase",
            ),
            *super().get_urls(),
        ]

    def company_erase_view(self, request, company_id):
        """GDPR erasure of one company, an admin's: confirmed by typing its Codat id, then
        started, or sent for a second person's approval when the four-eyes policy says so."""
        from approvals.services import company_erase_or_request_approval

        if not can_erase_companies(request.user):
            raise PermissionDenied
        company = get_object_or_404(Company, pk=company_id)
        form = CompanyEraseForm(request.POST or None, company=company)
        if request.method == "POST" and form.is_valid():
            try:
                erasure, approval = company_erase_or_request_approval(
                    company=company, maker=request.user
                )
            except ErasureRefused as refused:
                form.add_error(None, str(refused))
            else:
                if approval is not None:
                    messages.warning(request, f"{approval.summary}: waits for a second person.")
                    return redirect("admin:approvals_approvalrequest_change", approval.pk)
                messages.success(request, f"{erasure}: Codat is asked to delete the company.")
                return redirect("admin:companies_companyerasure_change", erasure.pk)
        context = admin_view_context(
            request,
            self,
            title=f"Erase {company.name} (GDPR)",
            form=form,
            submit_label="Erase this company",
            intro=(
                "Codat deletes the company with its connections and data; once it confirms, the "
                "portal deletes its copies too (the mirror, products, operations, webhook events, "
                "bank-feed data, the e-mail addresses consent requests went to). Consent evidence "
                "is kept for as long as each consent text's retention says, then the daily "
                "retention run deletes it. Only a record that a company with this Codat id was "
                "erased, when, by whom and under which approval is kept. This cannot be undone."
            ),
        )
        return TemplateResponse(request, "admin/service_form.html", context)

    def company_export_view(self, request, company_id):
        """Everything held about one company, as a JSON file; the export is on the trail."""
        if not can_export_company_data(request.user):
            raise PermissionDenied
        company = get_object_or_404(Company, pk=company_id)
        document = company_data_export(company=company)
        audit_record(action="gdpr.company_export", target=company)
        response = HttpResponse(
            json.dumps(document, cls=DjangoJSONEncoder, indent=2),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="company-{company.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response

    def export_csv_view(self, request):
        """The entries the list shows with the same search and filters, as a CSV file."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        entries = self.get_changelist_instance(request).get_queryset(request)
        response = StreamingHttpResponse(
            audit_entries_csv_lines(entries), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response


@admin.register(CompanyErasure)
class CompanyErasureAdmin(ReadOnlyMirrorAdmin):
    """Erasures and their tombstones: read only, written by companies/erasure.py."""

    list_display = ("codat_id", "state", "requested_at", "requested_by", "approval_id", "erased_at")
    list_filter = ("state",)
    search_fields = ("=codat_id", "requested_by")
    readonly_fields = tuple(field.name for field in CompanyErasure._meta.fields)
