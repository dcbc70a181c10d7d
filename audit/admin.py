import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from audit.company_export import company_data_export
from audit.models import AuditEntry
from audit.selectors import audit_entries_csv_lines
from audit.services import audit_record
from companies.models import Company
from core.admin_mixins import ReadOnlyMirrorAdmin
from core.roles import can_export_company_data


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
            *super().get_urls(),
        ]

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
