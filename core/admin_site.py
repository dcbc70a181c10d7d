"""The portal's admin site: Django's, with the dashboard on its home page.

Installed through `PortalAdminConfig` (INSTALLED_APPS), Django's documented way to replace the
default site, so `admin.site` and every `@admin.register` stay as they are.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class PortalAdminSite(admin.AdminSite):
    def index(self, request, extra_context=None):
        # Imported here: this module is loaded with the app registry, before any model.
        from core.dashboard import dashboard_for

        extra_context = {**(extra_context or {}), "dashboard": dashboard_for(request.user)}
        return super().index(request, extra_context=extra_context)


class PortalAdminConfig(AdminConfig):
    default_site = "core.admin_site.PortalAdminSite"
