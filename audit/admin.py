from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path

from audit.models import AuditEntry
from audit.selectors import audit_entries_csv_lines
from core.admin_mixins import ReadOnlyMirrorAdmin


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
            *super().get_urls(),
        ]

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
